"""What the labelling page asks the server for, as plain functions: JSON objects in, JSON objects out.

`LabellingApp` knows nothing of HTTP (that is `server.py`); every method runs in a worker thread and
each store call is its own SQLite transaction. A sample that cannot be shown (a missing or unreadable
file, an id no longer in the manifest) is set aside with its reason instead of being served, and the
next one is served; the reply names what was set aside, without any server path.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from bmmal.errors import BmmalError

MAX_TEXT = 200_000  # characters of a text file shown in the page
TOP_K = 5  # the model's best guesses offered as one-key choices


class BadRequest(BmmalError):
    pass


class MediaMissing(BmmalError):
    """The media file asked for does not exist (anymore); the message is safe to show to a client."""


def text_field(value, name: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"{name} must be a non-empty string of at most {limit} characters")
    return value.strip()


def top_guesses(prediction: dict | None, k: int = TOP_K) -> list[dict]:
    """The model's k most probable classes with their probability, best first."""
    if not prediction:
        return []
    probs = prediction.get("probs") or {prediction["label"]: prediction["score"]}
    best = sorted(probs.items(), key=lambda kv: -kv[1])[:k]
    return [{"label": label, "score": round(float(score), 4)} for label, score in best]


class LabellingApp:
    """The labelling actions over one project. `labeller` arguments come from the access token when it names
    one (see `access.py`), else from what the page sends."""

    def __init__(self, project):
        self.project = project
        self.store = project.store
        self.samples = project.samples
        self.ttl = project.settings.lease_seconds

    def recheck_set_aside(self) -> list[str]:
        """Serve again the set-aside samples that are whole now (the file was restored); returns their ids."""
        whole = [s for s in self.store.set_aside_items() if self.samples.problem(s) is None]
        if whole:
            self.store.restore(whole)
        return whole

    def project_info(self, labeller: str | None = None) -> dict:
        return {"name": self.project.dir.name, "classes": list(self.project.classes), "labeller": labeller,
                "modalities": [{"name": m, "kind": self.samples.kind(m)} for m in self.samples.modalities]}

    def sample(self, sample_id: str) -> dict:
        item = self.store.batch_item(sample_id)
        fields = []
        missing = self.samples.missing(sample_id)
        for m in self.samples.modalities:
            kind = self.samples.kind(m)
            field = {"name": m, "kind": kind}
            if m in missing:
                field["missing"] = True
            elif kind == "text":
                field["text"] = self.samples.text(sample_id, m)[:MAX_TEXT]
            else:
                field["url"] = "/media?" + urlencode({"id": sample_id, "m": m})
            fields.append(field)
        prediction = item["prediction"] if item else None
        guess = {"label": prediction["label"], "score": prediction["score"]} if prediction else None
        return {"id": sample_id, "batch": item["batch"] if item else None, "fields": fields,
                "prediction": guess and {**guess, "top": top_guesses(prediction)}}

    def _serve(self, session: str, labeller: str | None, **extra) -> dict:
        """The reply with the sample this session should see now; broken samples on the way are set aside."""
        set_aside = []
        while True:
            sample_id = self.store.claim(session, self.ttl, labeller)
            if sample_id is None:
                sample = None
                break
            reason = self.samples.problem(sample_id)
            if reason is None:
                sample = self.sample(sample_id)
                break
            self.store.set_aside(sample_id, reason)
            set_aside.append({"id": sample_id, "reason": reason})
        reply = {"sample": sample, "progress": self.store.progress(), **extra}
        if set_aside:
            reply["set_aside"] = set_aside
        return reply

    @staticmethod
    def _labeller(body: dict, bound: str | None) -> str | None:
        if bound is not None:
            return bound
        labeller = body.get("labeller")
        return text_field(labeller, "labeller", 60) if labeller not in (None, "") else None

    def next(self, body: dict, bound: str | None = None) -> dict:
        return self._serve(text_field(body.get("session"), "session"), self._labeller(body, bound))

    def answer(self, body: dict, bound: str | None = None) -> dict:
        session = text_field(body.get("session"), "session")
        label = body.get("label")
        if label not in self.project.classes:
            raise BadRequest(f"unknown class {label!r}")
        labeller = self._labeller(body, bound)
        self.store.answer(session, text_field(body.get("id"), "id", 1000), label, labeller)
        return self._serve(session, labeller)

    def skip(self, body: dict, bound: str | None = None) -> dict:
        session = text_field(body.get("session"), "session")
        self.store.skip(session, text_field(body.get("id"), "id", 1000))
        return self._serve(session, self._labeller(body, bound))

    def undo(self, body: dict, bound: str | None = None) -> dict:
        session = text_field(body.get("session"), "session")
        undone = self.store.undo(session, self.ttl)
        if undone is None:
            return self._serve(session, self._labeller(body, bound), message="nothing to undo")
        return {"sample": self.sample(undone), "progress": self.store.progress()}

    def release(self, body: dict, bound: str | None = None) -> dict:
        self.store.release(text_field(body.get("session"), "session"))
        return {"progress": self.store.progress()}

    def media(self, sample_id: str | None, modality: str | None) -> tuple[Path, str]:
        """(file, modality kind) of one sample's image or audio; FileNotFoundError for anything not served."""
        if sample_id not in self.samples.row_of or modality not in self.samples.modalities:
            raise FileNotFoundError
        if self.samples.kind(modality) == "text" or modality in self.samples.missing(sample_id):
            raise FileNotFoundError  # text is sent inline; an empty manifest cell has no media
        reason = self.samples.problem(sample_id)
        if reason is not None:
            if self.store.batch_item(sample_id) is not None and sample_id not in self.store.labels():
                self.store.set_aside(sample_id, reason)
            raise MediaMissing(f"sample {sample_id!r} cannot be shown: {reason}")
        path = self.samples.path(sample_id, modality)
        return path, self.samples.kind(modality)
