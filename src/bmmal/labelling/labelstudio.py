"""Label Studio interoperability: export the pending batch as import tasks, read an annotation export back.

Export: a JSON list of tasks, one per pending sample. `data` holds the sample id (`id`) and one field per
modality: inline text as it is, a text file's contents, and for image and audio files a URL (by default
Label Studio's local-files URL, `/data/local-files/?d=<path relative to the document root>`, which
Label Studio serves when LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and
LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT is that root). `predictions` carries the current model's guess as
a pre-annotation (a "choices" result with its probability as score). A labelling config (XML) that
matches the tasks is written next to them.

Import: a Label Studio JSON export, i.e. tasks with `annotations[].result[].value.choices`; cancelled
(skipped) annotations and tasks without annotations carry no label.
"""

from __future__ import annotations

import json
from pathlib import Path
from shlex import quote as shell_quote
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from bmmal.errors import BmmalError
from bmmal.storage import atomic_write_text

CHOICES_NAME = "label"
LOCAL_FILES_PREFIX = "/data/local-files/?d="
OBJECT_TAGS = {"image": "Image", "audio": "Audio", "text": "Text"}


def labelling_config(modalities: dict[str, str], classes: tuple[str, ...]) -> str:
    """Label Studio labelling config: one object tag per modality (by kind), single-choice classes."""
    if not modalities:
        raise BmmalError("a labelling config needs at least one modality")
    lines = ["<View>", '  <Header value="$id"/>']
    for name, kind in modalities.items():
        lines.append(f"  <{OBJECT_TAGS[kind]} name={quoteattr(name)} value={quoteattr('$' + name)}/>")
    first = next(iter(modalities))
    lines.append(f'  <Choices name="{CHOICES_NAME}" toName={quoteattr(first)} choice="single" showInline="true">')
    lines += [f"    <Choice value={quoteattr(c)}/>" for c in classes]
    lines += ["  </Choices>", "</View>", ""]
    return "\n".join(lines)


def media_url(path: Path, document_root: Path, url_prefix: str) -> str:
    """URL of a media file for Label Studio: prefix + its path relative to the document root."""
    try:
        relative = path.resolve().relative_to(document_root.resolve())
    except ValueError:
        raise BmmalError(f"{path} is outside the document root {document_root}; pass --document-root") from None
    return url_prefix + quote(relative.as_posix(), safe="/")


def task(sample, samples, prediction: dict | None, first_modality: str, document_root: Path, url_prefix: str,
         model_version: str) -> dict:
    data: dict = {"id": sample}
    missing = samples.missing(sample)
    if missing:
        data["missing"] = missing  # the modalities this sample lacks; their fields are empty
    for m in samples.modalities:
        if m in missing:
            data[m] = ""
        elif samples.kind(m) == "text":
            data[m] = samples.text(sample, m)
        else:
            data[m] = media_url(samples.path(sample, m), document_root, url_prefix)
    out = {"data": data}
    if prediction is not None:
        out["predictions"] = [{
            "model_version": model_version, "score": float(prediction["score"]),
            "result": [{"from_name": CHOICES_NAME, "to_name": first_modality, "type": "choices",
                        "value": {"choices": [prediction["label"]]}}],
        }]
    return out


def export_tasks(project, out: str | Path, document_root: str | Path | None = None,
                 url_prefix: str = LOCAL_FILES_PREFIX) -> tuple[Path, Path, int]:
    """Write the pending batch as Label Studio tasks to `out`, and its labelling config beside it.

    Returns (tasks file, config file, number of tasks)."""
    out = Path(out)
    samples = project.samples
    document_root = Path(document_root) if document_root is not None else samples.root
    items = project.store.pending_items()
    if not items:
        raise BmmalError(f"{project.dir} has no pending samples; run "
                         f"`bmmal query {shell_quote(str(project.dir))} --budget N` first")
    first = samples.modalities[0]
    tasks = [task(i["id"], samples, i["prediction"], first, document_root, url_prefix, f"bmmal-batch-{i['batch']}")
             for i in items]
    config_path = out.with_name(out.stem + "-config.xml")
    atomic_write_text(out, json.dumps(tasks, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(config_path, labelling_config({m: samples.kind(m) for m in samples.modalities},
                                                    project.classes))
    return out, config_path, len(tasks)


def read_export(path: Path):
    """(answers, tasks without an answer, problems) from a Label Studio JSON export."""
    from bmmal.labelling.importing import Answer, read_text

    text, problem = read_text(path)
    if problem:
        return [], 0, [problem]
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as e:
        raise BmmalError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(tasks, list):
        raise BmmalError(f"{path}: a Label Studio export is a JSON list of tasks, got {type(tasks).__name__}")
    answers, problems, unanswered = [], [], 0
    for n, t in enumerate(tasks, start=1):
        where = f"task {n}"
        data = t.get("data") if isinstance(t, dict) else None
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            problems.append(f"{where}: no data.id (the sample id)")
            continue
        sample_id = str(data["id"])
        where = f"task {n} ({sample_id})"
        found = 0
        annotations = t.get("annotations") or []
        if not isinstance(annotations, list):
            problems.append(f"{where}: annotations is not a list")
            continue
        for k, annotation in enumerate(annotations, start=1):
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            results = annotation.get("result") or []
            if not isinstance(results, list):
                problems.append(f"{where}, annotation {k}: result is not a list")
                continue
            for result in results:
                if not isinstance(result, dict) or result.get("type") != "choices":
                    continue
                value = result.get("value")
                choices = value.get("choices") if isinstance(value, dict) else None
                if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                    problems.append(f"{where}, annotation {k}: value must be {{\"choices\": [CLASS]}}, got "
                                    f"{json.dumps(value)[:80]}")
                    continue
                if len(choices) != 1:
                    problems.append(f"{where}, annotation {k}: {len(choices)} choices, expected exactly one class")
                    continue
                answers.append(Answer(sample_id, choices[0], f"{where}, annotation {k}"))
                found += 1
        unanswered += found == 0
    return answers, unanswered, problems
