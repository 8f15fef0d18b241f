"""The labelling commands of `bmmal`: init, query, status, label, export, import.

`register(app, console)` adds them to the main typer app; heavy modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bmmal.errors import BmmalError

ProjectDir = Annotated[Path, typer.Argument(help="the labelling project directory")]


def _extractors(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        modality, sep, name = value.partition("=")
        if not sep or not modality.strip() or not name.strip():
            raise BmmalError(f"--extractor expects MODALITY=NAME, got {value!r}")
        out[modality.strip()] = name.strip()
    return out


def register(app: typer.Typer, console: Console) -> None:
    @app.command("init")
    def init(
        directory: ProjectDir,
        manifest: Annotated[Path, typer.Option(help="CSV or JSONL manifest: id, label (mostly empty), modalities")],
        classes: Annotated[str, typer.Option(help="comma-separated class names, e.g. cat,dog,bird")],
        modalities: Annotated[str | None, typer.Option(help="comma-separated modality columns (default: all)")]
        = None,
        extractor: Annotated[list[str], typer.Option(help="MODALITY=EXTRACTOR, to override the default feature "
                                                          "extractor of a modality (repeatable)")] = [],  # noqa: B006
        seed: Annotated[int, typer.Option(help="seed of model training, selection and the validation split")] = 0,
    ):
        """Create a labelling project over a manifest; the manifest's labels become seed labels."""
        from bmmal.labelling.project import Project

        chosen = [m.strip() for m in modalities.split(",")] if modalities else None
        project = Project.create(directory, manifest, classes, chosen, seed, extractors=_extractors(extractor))
        counts = project.counts()
        console.print(f"project {project.dir}: {counts['total']} samples, {counts['labeled']} seed labels, "
                      f"modalities {', '.join(project.modalities)}, classes {', '.join(project.classes)}")
        console.print(f"next: bmmal query {project.dir} --budget N")

    @app.command("query")
    def query(
        directory: ProjectDir,
        budget: Annotated[int, typer.Option(min=1, help="how many samples to select")],
        strategy: Annotated[str, typer.Option(help="selection strategy; 'auto' is bmmal once there are labels, "
                                                   "kmeans before (random, kmeans and coreset work without labels)")]
        = "auto",
    ):
        """Train on the labels so far, select the next batch and record it as pending."""
        from bmmal.labelling.project import Project
        from bmmal.labelling.query import query as run_query

        project = Project(directory)
        with console.status("training and selecting..."):
            result = run_query(project, budget, strategy)
        console.print(f"batch {result.batch}: {len(result.sample_ids)} samples selected by {result.strategy}")
        if result.model_info is None:
            console.print("no labels yet, so no model: the batch was chosen from the features alone")
        else:
            _print_model(console, result.model_info)
        console.print(f"next: bmmal label {project.dir}   (or: bmmal export {project.dir} --format label-studio)")

    @app.command("status")
    def status(directory: ProjectDir):
        """Labelled, pending and unlabelled counts, the current model's metrics and modality balance."""
        from bmmal.labelling.project import Project

        project = Project(directory)
        counts = project.counts()
        table = Table(title=f"project {project.dir}", show_header=False)
        for key in ("labeled", "pending", "unlabeled", "total"):
            table.add_row(key, str(counts[key]))
        batches = project.store.batches()
        if batches:
            last = batches[-1]
            table.add_row("batches", f"{len(batches)} (last: {last['strategy']}, {last['done']}/{last['size']} "
                                     "labelled)")
        console.print(table)
        info = project.model_info()
        if info is None:
            console.print("no model yet (one is trained by `bmmal query` once there are labels)")
        else:
            _print_model(console, info)

    @app.command("label")
    def label(
        directory: ProjectDir,
        host: Annotated[str, typer.Option(help="address to listen on (127.0.0.1: this computer only)")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free port)")] = 8765,
    ):
        """Serve the labelling page for the pending samples; every answer is saved at once."""
        from bmmal.labelling.project import Project
        from bmmal.labelling.server import make_server, url_of

        project = Project(directory)
        if not project.store.pending():
            raise BmmalError(f"{project.dir} has no pending samples; run `bmmal query {project.dir} --budget N` first")
        server = make_server(project, host, port)
        console.print(f"labelling {len(project.store.pending())} pending samples at {url_of(server)}  "
                      "(Ctrl+C stops; answers are saved as they are given)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopped; every answer given is saved")
        finally:
            server.server_close()

    @app.command("export")
    def export(
        directory: ProjectDir,
        format: Annotated[str, typer.Option("--format", help="export format: label-studio")] = "label-studio",
        out: Annotated[Path | None, typer.Option(help="tasks file (default DIR/export/label-studio-tasks.json); "
                                                      "the labelling config goes beside it")] = None,
        document_root: Annotated[Path | None, typer.Option(help="folder that media URLs are relative to "
                                                                "(default: the manifest's folder)")] = None,
        url_prefix: Annotated[str, typer.Option(help="prefix of media URLs (default: Label Studio's local files)")]
        = "/data/local-files/?d=",
    ):
        """Write the pending batch as Label Studio tasks, with the model's predictions as pre-annotations."""
        from bmmal.labelling.labelstudio import export_tasks
        from bmmal.labelling.project import Project

        if format != "label-studio":
            raise BmmalError(f"unknown export format {format!r}; available: label-studio")
        project = Project(directory)
        out = out or project.dir / "export" / "label-studio-tasks.json"
        tasks, config, n = export_tasks(project, out, document_root, url_prefix)
        console.print(f"{n} tasks written to {tasks}; labelling config: {config}")

    @app.command("import")
    def import_(
        directory: ProjectDir,
        file: Annotated[Path, typer.Argument(help="a Label Studio JSON export, or a CSV with columns id,label")],
        overwrite: Annotated[bool, typer.Option(help="replace labels the project already has")] = False,
    ):
        """Import labels: all of them, or (on any problem) none, with the problems listed."""
        from bmmal.labelling.importing import ImportRejected, import_labels
        from bmmal.labelling.project import Project

        project = Project(directory)
        try:
            report = import_labels(project, file, overwrite)
        except ImportRejected as e:
            err = Console(stderr=True)
            for line in e.lines():
                err.print(f"  {line}", highlight=False, soft_wrap=True)
            raise
        console.print(f"labels imported: {report.applied} new or changed, {report.unchanged} already there, "
                      f"{report.unanswered} entries without a label; {project.counts()['labeled']} samples labelled "
                      "now")


def _print_model(console: Console, info: dict) -> None:
    console.print(f"model trained on {info['trained_on']} labels (batch {info.get('batch', '-')})")
    val = info.get("validation")
    if val:
        console.print(f"  held-out labels: {info['validation_size']}, accuracy {val['accuracy_micro']:.3f} "
                      f"(micro) / {val['accuracy_macro']:.3f} (macro), macro F1 {val['f1_macro']:.3f}")
    else:
        console.print("  no held-out labels yet (20% of the labels are held out once there are enough)")
    balance = info.get("pool_balance") or {}
    if balance:
        shares = ", ".join(f"{m} {v:.2f}" for m, v in balance.items())
        console.print(f"  modality balance (mean Shapley share on the unlabelled pool): {shares}")
