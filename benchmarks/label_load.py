"""Load test of the labelling server on loopback: N labellers answer M samples each, all at once.

Each labeller is a thread with its own keep-alive connection and session; it asks for a sample, answers
it (the answer request also claims the next sample), and repeats until it has given M answers. Checked
afterwards, in the database: every answer that got a 200 is there exactly once, with the right label
and labeller; nothing else was written; no request failed and no connection was reset. Reported: the
latency of the answer requests (p50, p95, max) and answers per second.

    nice -n 10 .venv/bin/python benchmarks/label_load.py --labellers 8 --answers 200

The server runs as its own process (`bmmal label DIR --port 0`), so clients and server do not share one
interpreter lock. Traffic goes to 127.0.0.1 only. The project is a manifest of inline texts (nothing to
encode); `tests/test_labelling_load.py` runs the same check small, against a server in a thread.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bmmal.labelling.project import DB_FILE, PROJECT_FILE, Settings
from bmmal.labelling.store import LabelStore
from bmmal.storage import atomic_write_json

CLASSES = tuple(f"class_{k:03d}" for k in range(101))


def make_project(folder: Path, n_samples: int) -> Path:
    """A project over n inline-text samples, all of them pending in one batch (with fake model guesses)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    ids = [f"t{i:05d}" for i in range(n_samples)]
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "label", "text"])
        writer.writerows([i, "", f"sample text number {i}"] for i in ids)
    project = folder / "project"
    project.mkdir()
    atomic_write_json(project / PROJECT_FILE, Settings(str(manifest), CLASSES, ("text",)).to_json())
    predictions = [{"label": CLASSES[k % len(CLASSES)], "score": 0.5,
                    "probs": {c: 1 / len(CLASSES) for c in CLASSES[:10]}} for k in range(n_samples)]
    LabelStore(project / DB_FILE).add_batch("random", ids, predictions)
    return project


def label_for(sample_id: str) -> str:
    return CLASSES[int(sample_id[1:]) % len(CLASSES)]


def labeller(port: int, name: str, answers: int, out: dict) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}

    def post(path: str, body: dict) -> tuple[int, dict]:
        connection.request("POST", path, json.dumps({"session": name, "labeller": name, **body}), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    given, latencies, failures = [], [], []
    try:
        status, reply = post("/api/next", {})
        while len(given) < answers and reply.get("sample"):
            sample = reply["sample"]["id"]
            start = time.perf_counter()
            status, reply = post("/api/answer", {"id": sample, "label": label_for(sample)})
            latencies.append(time.perf_counter() - start)
            if status != 200:
                failures.append(f"{status}: {reply.get('error')}")
                break
            given.append(sample)
    except OSError as e:  # a reset or refused connection
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        connection.close()
    out[name] = {"given": given, "latencies": latencies, "failures": failures}


def run_load(port: int, n_labellers: int, answers: int, time_limit: float) -> dict:
    """Run the labellers at once against the server on 127.0.0.1:port; their answers and timings."""
    out: dict = {}
    threads = [threading.Thread(target=labeller, args=(port, f"labeller-{k}", answers, out), daemon=True)
               for k in range(n_labellers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(time_limit - (time.perf_counter() - start), 0.1))
    elapsed = time.perf_counter() - start
    late = sum(t.is_alive() for t in threads)
    if late:
        print(f"the load test ran past its {time_limit} s limit: {late} labellers unfinished", file=sys.stderr)
        for t in threads:
            t.join()  # their answers (so far) are still checked
    return {"labellers": out, "seconds": elapsed, "finished": not late}


def check(project_dir: Path, result: dict) -> dict:
    """Compare the database with what the labellers were told was saved; summary figures."""
    given = {s: name for name, r in result["labellers"].items() for s in r["given"]}
    n_given = sum(len(r["given"]) for r in result["labellers"].values())
    with LabelStore(project_dir / DB_FILE, read_only=True).reading() as db:
        rows = {s: (label, who) for s, label, who in db.execute("SELECT sample_id, label, labeller FROM labels")}
    latencies = sorted(x for r in result["labellers"].values() for x in r["latencies"])
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "answers": n_given,
        "duplicated": n_given - len(given),  # a sample two labellers were both told they labelled
        "lost": sum(rows.get(s) != (label_for(s), who) for s, who in given.items()),
        "unexpected": len(set(rows) - set(given)),
        "failures": [f for r in result["labellers"].values() for f in r["failures"]],
        "seconds": result["seconds"], "within_time_limit": result["finished"],
        "answers_per_second": n_given / result["seconds"],
        "p50_ms": 1000 * q[49], "p95_ms": 1000 * q[94], "max_ms": 1000 * latencies[-1],
    }


def start_server(project_dir: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "bmmal.cli", "label", str(project_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in proc.stdout:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if match:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining its output
            return proc, int(match.group(1))
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labellers", type=int, default=8)
    parser.add_argument("--answers", type=int, default=200, help="answers per labeller")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds the labelling may take at most")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        # one sample more per labeller: the one each still holds when it stops
        project_dir = make_project(Path(folder), args.labellers * (args.answers + 1))
        proc, port = start_server(project_dir)
        try:
            result = run_load(port, args.labellers, args.answers, args.time_limit)
        finally:
            proc.terminate()
            proc.wait(30)
        summary = check(project_dir, result)
    print(json.dumps({"labellers": args.labellers, "answers_each": args.answers, **summary}, indent=1))
    if any(summary[k] for k in ("lost", "duplicated", "unexpected", "failures")) or not result["finished"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
