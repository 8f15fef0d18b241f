"""The labelling store: one SQLite database per project, the single source of truth for human labels.

Every change is one short `BEGIN IMMEDIATE` transaction (WAL journal, `synchronous=FULL`), so an answer
is on disk before the HTTP reply leaves, a killed server loses nothing, and concurrent writers are
serialised by SQLite itself. Connections are opened per operation, so any thread or process can use it.

Tables:
- labels       current label of each labelled sample (class name), where it came from, who, when;
- batches      one row per `bmmal query`: strategy, time, labelled count then, model info (JSON);
- batch_items  the samples of each batch in order, with the model's prediction (JSON) for pre-annotation;
               a sample is pending while it is in a batch and has no label;
- leases       which session (a labeller's browser tab) holds which pending sample until when, so that
               no two sessions get the same sample;
- skips        samples a session skipped (they stay pending for everyone else);
- events       every web answer and skip, in order, so that undo can reverse a session's last action;
- set_aside    pending samples that cannot be shown (a missing file, an id gone from the manifest), with the
               reason; they are not served until `bmmal label` finds them whole again;
- second_labels the second, independent answer to a sample marked for double labelling (batch_items.copies
               = 2), given by another named labeller; `labels` keeps the first answer.

Read-only users (`bmmal status`, `bmmal export`) open the file with `read_only=True`: no write lock, no
schema change. SQLite errors become one-line `BmmalError`s: `StoreBusy` (locked longer than the busy
timeout) and `StoreUnreadable` (not a database, corrupted, unreadable).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bmmal.errors import BmmalError

SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    sample_id TEXT PRIMARY KEY, label TEXT NOT NULL, source TEXT NOT NULL, labeller TEXT,
    time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY, strategy TEXT NOT NULL, created REAL NOT NULL, n_labeled INTEGER NOT NULL,
    info TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS batch_items (
    sample_id TEXT PRIMARY KEY, batch INTEGER NOT NULL REFERENCES batches(id), position INTEGER NOT NULL,
    prediction TEXT);
CREATE INDEX IF NOT EXISTS batch_items_order ON batch_items (batch, position);
CREATE TABLE IF NOT EXISTS leases (
    sample_id TEXT PRIMARY KEY, session TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS skips (
    session TEXT NOT NULL, sample_id TEXT NOT NULL, PRIMARY KEY (session, sample_id));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, sample_id TEXT NOT NULL,
    action TEXT NOT NULL, label TEXT, time REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS set_aside (
    sample_id TEXT PRIMARY KEY, reason TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS second_labels (
    sample_id TEXT PRIMARY KEY, label TEXT NOT NULL, labeller TEXT NOT NULL, time REAL NOT NULL);
"""
TABLES = {"labels", "batches", "batch_items", "leases", "skips", "events", "set_aside", "second_labels"}

ITEM = "SELECT b.sample_id, b.batch, b.position, b.prediction FROM batch_items b"
PENDING = "SELECT b.sample_id FROM batch_items b LEFT JOIN labels l USING (sample_id) WHERE l.sample_id IS NULL"
# A batch item this session can be shown (`b` batch_items, `l` its label, :labeller the session's labeller):
# unlabelled, or marked for a second answer that another named labeller gave the first one to.
OPEN_TO = ("(l.sample_id IS NULL OR (b.copies > 1 AND :labeller IS NOT NULL AND l.labeller IS NOT NULL "
           "AND l.labeller != :labeller AND b.sample_id NOT IN (SELECT sample_id FROM second_labels))) "
           "AND b.sample_id NOT IN (SELECT sample_id FROM set_aside)")


class Conflict(BmmalError):
    """A labelling action that the current state does not allow (taken by someone else, already labelled)."""


class StoreBusy(BmmalError):
    """The database stayed locked by another process for longer than the busy timeout."""


class StoreUnreadable(BmmalError):
    """The database file is not a readable label store (corrupted, not SQLite, no permission)."""


class LabelStore:
    """Labels, batches and leases of one project, in `path` (an SQLite file)."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time, busy_timeout: float = 30.0,
                 read_only: bool = False):
        self.path = Path(path)
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.read_only = read_only
        self._local = threading.local()
        if read_only and not self.path.is_file():
            raise StoreUnreadable(f"{self.path} is missing")
        with self.reading() as db:  # an up-to-date file is only read: no write lock for merely opening it
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = {r[1] for r in db.execute("PRAGMA table_info(batch_items)")}
        if TABLES <= tables and "copies" in columns:
            return
        if read_only:  # a file from before the newest tables: upgraded once, by a writable store
            LabelStore(self.path, clock, busy_timeout)
            return
        with self.transaction() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            if "copies" not in {r[1] for r in db.execute("PRAGMA table_info(batch_items)")}:
                db.execute("ALTER TABLE batch_items ADD COLUMN copies INTEGER NOT NULL DEFAULT 1")

    def connect(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use and kept: closing the last connection to a WAL
        database checkpoints it, which would cost every answer a few extra disk syncs."""
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            return db
        with self._errors():
            if self.read_only:
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.busy_timeout,
                                     isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA query_only=ON")
            else:
                db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                     check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA foreign_keys=ON")
        self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's errors about the file itself as one-line BmmalErrors (a bug's IntegrityError stays as it is)."""
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreBusy(f"{self.path} is locked by another process ({e}); try again") from None
            raise StoreUnreadable(f"{self.path} cannot be used: {e}") from None
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.IntegrityError):
                raise
            raise StoreUnreadable(f"{self.path} is not a readable label database: {e}") from None

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): all of it is applied, or none.

        `durable=False` skips the disk sync at commit, for what a power cut may lose harmlessly (a lease);
        the next durable commit syncs it too, and a killed process loses nothing either way."""
        db = self.connect()
        with self._errors():
            db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads (a shared read: WAL lets writers go on meanwhile)."""
        db = self.connect()
        with self._errors():
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    # ---- reading ----------------------------------------------------------------------------------
    def labels(self) -> dict[str, str]:
        with self.reading() as db:
            return dict(db.execute("SELECT sample_id, label FROM labels"))

    def pending(self) -> list[str]:
        """Pending sample ids, oldest batch first, in selection order."""
        return [item["id"] for item in self.pending_items()]

    def pending_items(self) -> list[dict]:
        """Pending samples with their batch and the model's prediction at query time, in order."""
        with self.reading() as db:
            rows = db.execute(ITEM + " LEFT JOIN labels l USING (sample_id) WHERE l.sample_id IS NULL "
                              "ORDER BY b.batch, b.position").fetchall()
        return [_item(row) for row in rows]

    def batch_item(self, sample_id: str) -> dict | None:
        """A sample's batch and the model's prediction for it; None if it was never queried."""
        with self.reading() as db:
            row = db.execute(ITEM + " WHERE b.sample_id = ?", (sample_id,)).fetchone()
        return _item(row) if row else None

    def batches(self) -> list[dict]:
        with self.reading() as db:
            rows = db.execute("SELECT id, strategy, created, n_labeled, info, "
                              "(SELECT count(*) FROM batch_items i WHERE i.batch = batches.id), "
                              "(SELECT count(*) FROM batch_items i JOIN labels l USING (sample_id) "
                              " WHERE i.batch = batches.id) FROM batches ORDER BY id").fetchall()
        return [{"id": i, "strategy": s, "created": c, "n_labeled": n, "info": json.loads(info), "size": size,
                 "done": done} for i, s, c, n, info, size, done in rows]

    def progress(self) -> dict[str, int]:
        """Labelled and total samples over the open batches (those with a pending sample, else the last);
        `set_aside` of them cannot be shown, `second_wanted` await a second labeller's answer."""
        with self.reading() as db:
            per_batch = db.execute("SELECT b.batch, count(*), count(l.sample_id), count(a.sample_id) "
                                   "FROM batch_items b LEFT JOIN labels l USING (sample_id) "
                                   "LEFT JOIN set_aside a USING (sample_id) GROUP BY b.batch ORDER BY b.batch"
                                   ).fetchall()
            n_labeled = db.execute("SELECT count(*) FROM labels").fetchone()[0]
            second = db.execute("SELECT count(*) FROM batch_items b JOIN labels l USING (sample_id) WHERE b.copies > 1 "
                                "AND b.sample_id NOT IN (SELECT sample_id FROM second_labels)").fetchone()[0]
        open_batches = [row for row in per_batch if row[2] < row[1]] or per_batch[-1:]
        total, done, aside = (sum(row[k] for row in open_batches) for k in (1, 2, 3))
        return {"done": done, "total": total, "pending": total - done, "labeled": n_labeled, "set_aside": aside,
                "second_wanted": second}

    def set_aside_items(self) -> dict[str, str]:
        """Pending samples that cannot be shown: id -> reason."""
        with self.reading() as db:
            return dict(db.execute("SELECT a.sample_id, a.reason FROM set_aside a LEFT JOIN labels l USING (sample_id) "
                                   "WHERE l.sample_id IS NULL ORDER BY a.time, a.sample_id"))

    def labeller_counts(self) -> dict[str, dict[str, int]]:
        """Per named labeller: first answers given in the browser, and second answers (double labelling)."""
        counts: dict[str, dict[str, int]] = {}
        with self.reading() as db:
            for table, key in (("labels", "answers"), ("second_labels", "second")):
                for name, n in db.execute(f"SELECT labeller, count(*) FROM {table} WHERE labeller IS NOT NULL "
                                          "GROUP BY labeller ORDER BY labeller"):
                    counts.setdefault(name, {"answers": 0, "second": 0})[key] = n
        return counts

    def double_labeled(self) -> list[tuple[str, str, str]]:
        """(sample id, first label, second label) of every sample that two labellers answered."""
        with self.reading() as db:
            return db.execute("SELECT s.sample_id, l.label, s.label FROM second_labels s JOIN labels l "
                              "USING (sample_id) ORDER BY s.sample_id").fetchall()

    # ---- batches -------------------------------------------------------------------------------------
    def add_batch(self, strategy: str, sample_ids: list[str], predictions: list[dict | None] | None = None,
                  info: dict | None = None) -> int:
        """Record a queried batch; its samples become pending. They must be unlabelled and not pending."""
        predictions = predictions if predictions is not None else [None] * len(sample_ids)
        with self.transaction() as db:
            taken = _existing(db, "SELECT sample_id FROM batch_items WHERE sample_id IN ({})", sample_ids)
            taken |= _existing(db, "SELECT sample_id FROM labels WHERE sample_id IN ({})", sample_ids)
            if taken:
                raise BmmalError(f"sample {min(taken)!r} is already labelled or pending")
            n_labeled = db.execute("SELECT count(*) FROM labels").fetchone()[0]
            batch = db.execute("INSERT INTO batches (strategy, created, n_labeled, info) VALUES (?, ?, ?, ?)",
                               (strategy, self.clock(), n_labeled, json.dumps(info or {}))).lastrowid
            db.executemany("INSERT INTO batch_items (sample_id, batch, position, prediction) VALUES (?, ?, ?, ?)",
                           [(s, batch, i, json.dumps(p) if p is not None else None)
                            for i, (s, p) in enumerate(zip(sample_ids, predictions))])
        return batch

    # ---- labelling in the browser ---------------------------------------------------------------------
    # A session is one browser tab of one labeller: leases, skips and undo belong to it.
    def claim(self, session: str, ttl: float, labeller: str | None = None) -> str | None:
        """The pending sample this session should see now, leased to it for `ttl` seconds.

        A session keeps its current lease (renewed); otherwise it gets the first pending sample that no
        other session holds and that it has not skipped (or a sample marked for double labelling that
        another named labeller answered first). The claim is one write transaction, so two sessions asking
        at once get different samples. Set-aside samples are never handed out.
        """
        now = self.clock()
        args = {"session": session, "labeller": labeller}
        with self.transaction(durable=False) as db:
            db.execute("DELETE FROM leases WHERE expires <= ?", (now,))
            held = db.execute("SELECT b.sample_id FROM leases s JOIN batch_items b USING (sample_id) "
                              "LEFT JOIN labels l USING (sample_id) "
                              f"WHERE s.session = :session AND {OPEN_TO} ORDER BY b.batch, b.position LIMIT 1",
                              args).fetchone()
            if held is None:
                held = db.execute(
                    f"SELECT b.sample_id FROM batch_items b LEFT JOIN labels l USING (sample_id) WHERE {OPEN_TO} "
                    "AND b.sample_id NOT IN (SELECT sample_id FROM leases) "
                    "AND b.sample_id NOT IN (SELECT sample_id FROM skips WHERE session = :session) "
                    "ORDER BY b.batch, b.position LIMIT 1", args).fetchone()
            if held is None:
                return None
            self._lease(db, session, held[0], now + ttl)
            return held[0]

    @staticmethod
    def _lease(db: sqlite3.Connection, session: str, sample_id: str, expires: float) -> None:
        db.execute("DELETE FROM leases WHERE session = ?", (session,))
        db.execute("INSERT OR REPLACE INTO leases (sample_id, session, expires) VALUES (?, ?, ?)",
                   (sample_id, session, expires))

    def release(self, session: str) -> None:
        """The session is gone (its page was closed): its sample is free for the others at once."""
        with self.transaction(durable=False) as db:
            db.execute("DELETE FROM leases WHERE session = ?", (session,))

    def _check_actionable(self, db: sqlite3.Connection, session: str, sample_id: str) -> None:
        if db.execute("SELECT 1 FROM batch_items WHERE sample_id = ?", (sample_id,)).fetchone() is None:
            raise Conflict(f"sample {sample_id!r} is not in a queried batch")
        holder = db.execute("SELECT session FROM leases WHERE sample_id = ? AND expires > ?",
                            (sample_id, self.clock())).fetchone()
        if holder is not None and holder[0] != session:
            raise Conflict(f"sample {sample_id!r} is being labelled by someone else")

    def answer(self, session: str, sample_id: str, label: str, labeller: str | None = None) -> None:
        """Save one label given in the browser. Repeating the same answer from the same session is a no-op.

        On a labelled sample marked for double labelling, another named labeller's answer is saved as its
        second answer (`second_labels`); `labels` keeps the first."""
        with self.transaction() as db:
            current = db.execute("SELECT label, labeller FROM labels WHERE sample_id = ?", (sample_id,)).fetchone()
            action = "label"
            if current is not None:
                last = db.execute("SELECT label FROM events WHERE session = ? AND sample_id = ? AND undone = 0 "
                                  "AND action IN ('label', 'second') ORDER BY id DESC LIMIT 1",
                                  (session, sample_id)).fetchone()
                if last is not None and last[0] == label:
                    return
                if not self._wants_second(db, sample_id, current[1], labeller):
                    raise Conflict(f"sample {sample_id!r} is already labelled {current[0]!r}")
                action = "second"
            self._check_actionable(db, session, sample_id)
            now = self.clock()
            if action == "label":
                db.execute("INSERT INTO labels (sample_id, label, source, labeller, time) VALUES (?, ?, 'web', ?, ?)",
                           (sample_id, label, labeller, now))
            else:
                db.execute("INSERT INTO second_labels (sample_id, label, labeller, time) VALUES (?, ?, ?, ?)",
                           (sample_id, label, labeller, now))
            db.execute("DELETE FROM leases WHERE sample_id = ?", (sample_id,))
            db.execute("INSERT INTO events (session, sample_id, action, label, time) VALUES (?, ?, ?, ?, ?)",
                       (session, sample_id, action, label, now))

    @staticmethod
    def _wants_second(db: sqlite3.Connection, sample_id: str, first_labeller: str | None,
                      labeller: str | None) -> bool:
        """Whether `labeller` may give the second answer to this (labelled) sample."""
        if labeller is None or first_labeller is None or labeller == first_labeller:
            return False
        row = db.execute("SELECT copies, (SELECT count(*) FROM second_labels WHERE sample_id = ?) FROM batch_items "
                         "WHERE sample_id = ?", (sample_id, sample_id)).fetchone()
        return row is not None and row[0] > 1 and row[1] == 0

    def skip(self, session: str, sample_id: str) -> None:
        """This session passes on a sample; it stays pending for the others."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM labels WHERE sample_id = ?", (sample_id,)).fetchone():
                raise Conflict(f"sample {sample_id!r} is already labelled")
            self._check_actionable(db, session, sample_id)
            db.execute("INSERT OR IGNORE INTO skips (session, sample_id) VALUES (?, ?)", (session, sample_id))
            db.execute("DELETE FROM leases WHERE sample_id = ?", (sample_id,))
            db.execute("INSERT INTO events (session, sample_id, action, time) VALUES (?, ?, 'skip', ?)",
                       (session, sample_id, self.clock()))

    def undo(self, session: str, ttl: float) -> str | None:
        """Reverse this session's last answer or skip; the sample comes back to it. None: nothing to undo."""
        with self.transaction() as db:
            last = db.execute("SELECT id, sample_id, action, label FROM events WHERE session = ? AND undone = 0 "
                              "ORDER BY id DESC LIMIT 1", (session,)).fetchone()
            if last is None:
                return None
            event, sample_id, action, label = last
            now = self.clock()
            holder = db.execute("SELECT session FROM leases WHERE sample_id = ? AND expires > ?",
                                (sample_id, now)).fetchone()
            if holder is not None and holder[0] != session:
                raise Conflict(f"sample {sample_id!r} is being labelled by someone else now")
            if action in ("label", "second"):
                if action == "label" and db.execute("SELECT 1 FROM second_labels WHERE sample_id = ?",
                                                    (sample_id,)).fetchone():
                    raise Conflict(f"sample {sample_id!r} has a second answer since; it cannot be undone")
                table = "labels" if action == "label" else "second_labels"
                source = " AND source = 'web'" if action == "label" else ""
                deleted = db.execute(f"DELETE FROM {table} WHERE sample_id = ? AND label = ?{source}",
                                     (sample_id, label)).rowcount
                if not deleted:
                    raise Conflict(f"the label of sample {sample_id!r} was changed since; it cannot be undone")
            else:
                db.execute("DELETE FROM skips WHERE session = ? AND sample_id = ?", (session, sample_id))
            db.execute("UPDATE events SET undone = 1 WHERE id = ?", (event,))
            self._lease(db, session, sample_id, now + ttl)
            return sample_id

    # ---- samples that cannot be shown, double labelling ------------------------------------------------
    def set_aside(self, sample_id: str, reason: str) -> None:
        """Stop serving a pending sample (its lease ends); `reason` is shown to labellers and in status."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO set_aside (sample_id, reason, time) VALUES (?, ?, ?)",
                       (sample_id, reason, self.clock()))
            db.execute("DELETE FROM leases WHERE sample_id = ?", (sample_id,))

    def restore(self, sample_ids: Iterable[str]) -> None:
        """Serve these set-aside samples again (they were found whole)."""
        with self.transaction() as db:
            db.executemany("DELETE FROM set_aside WHERE sample_id = ?", [(s,) for s in sample_ids])

    def mark_double(self, fraction: float, salt: str) -> int:
        """Mark a fixed share (`fraction`, chosen by a hash of salt and id) of the unanswered pending samples
        for double labelling; returns how many pending samples are marked now."""
        with self.transaction() as db:
            ids = [r[0] for r in db.execute(PENDING)]
            chosen = [(s,) for s in ids if _unit_hash(f"{salt}:{s}") < fraction]
            db.executemany("UPDATE batch_items SET copies = 2 WHERE sample_id = ?", chosen)
            return len(db.execute(PENDING + " AND b.copies > 1").fetchall())

    # ---- labels from files --------------------------------------------------------------------------
    def set_labels(self, labels: Iterable[tuple[str, str]], source: str, labeller: str | None = None) -> int:
        """Write (id, label) pairs in one transaction (new or replaced); returns how many changed."""
        now = self.clock()
        changed = 0
        with self.transaction() as db:
            for sample_id, label in labels:
                changed += db.execute(
                    "INSERT INTO labels (sample_id, label, source, labeller, time) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (sample_id) DO UPDATE SET label = excluded.label, source = excluded.source, "
                    "labeller = excluded.labeller, time = excluded.time WHERE label != excluded.label",
                    (sample_id, label, source, labeller, now)).rowcount
                db.execute("DELETE FROM leases WHERE sample_id = ?", (sample_id,))
        return changed


def _unit_hash(text: str) -> float:
    """A number in [0, 1) fixed by `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2 ** 64


def _item(row: tuple) -> dict:
    sample_id, batch, position, prediction = row
    return {"id": sample_id, "batch": batch, "position": position,
            "prediction": json.loads(prediction) if prediction else None}


def _existing(db: sqlite3.Connection, query: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found |= {r[0] for r in db.execute(query.format(",".join("?" * len(chunk))), chunk)}
    return found
