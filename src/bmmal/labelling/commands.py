"""The labelling commands of `bmmal`: init, query, status, label, export, import.

`register(app, console)` adds them to the main typer app; heavy modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from shlex import quote
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
        executor: Annotated[str, typer.Option(help="local, or ray: extract the features through Ray Data, in "
                                                   "shards (resumable per shard; pip install 'bmmal\\[ray]')")]
        = "local",
    ):
        """Create a labelling project over a manifest; the manifest's labels become seed labels."""
        from bmmal.labelling.project import Project

        chosen = [m.strip() for m in modalities.split(",")] if modalities else None
        project = Project.create(directory, manifest, classes, chosen, seed, executor=executor,
                                 extractors=_extractors(extractor))
        counts = project.counts()
        console.print(f"project {project.dir}: {counts['total']} samples, {counts['labeled']} seed labels, "
                      f"modalities {', '.join(project.modalities)}, classes {', '.join(project.classes)}")
        console.print(f"next: bmmal query {quote(str(project.dir))} --budget N", highlight=False, soft_wrap=True)

    @app.command("query")
    def query(
        directory: ProjectDir,
        budget: Annotated[int, typer.Option(min=1, help="how many samples to select")],
        strategy: Annotated[str, typer.Option(help="selection strategy; 'auto' is bmmal once there are labels, "
                                                   "kmeans before (random, kmeans and coreset work without labels)")]
        = "auto",
        executor: Annotated[str, typer.Option(help="local, or ray: select across Ray workers (badge, bmmal, "
                                                   "coreset, random)")] = "local",
    ):
        """Train on the labels so far, select the next batch and record it as pending."""
        from bmmal.labelling.project import Project
        from bmmal.labelling.query import query as run_query

        project = Project(directory)
        with console.status("training and selecting..."):
            result = run_query(project, budget, strategy, executor=executor)
        console.print(f"batch {result.batch}: {len(result.sample_ids)} samples selected by {result.strategy}")
        if result.model_info is None:
            console.print("no labels yet, so no model: the batch was chosen from the features alone")
        else:
            _print_model(console, result.model_info)
        where = quote(str(project.dir))
        console.print(f"next: bmmal label {where}   (or: bmmal export {where} --format label-studio)", highlight=False,
                      soft_wrap=True)

    @app.command("status")
    def status(directory: ProjectDir):
        """Labelled, pending and unlabelled counts, samples set aside, labellers and their agreement, the
        current model's metrics and modality balance."""
        from bmmal.labelling.agreement import agreement
        from bmmal.labelling.project import Project

        project = Project(directory, read_only=True)
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
        aside = project.store.set_aside_items()
        if aside:
            console.print(f"{len(aside)} pending samples set aside (not shown to labellers until fixed; "
                          "`bmmal label` checks them again at start):", highlight=False)
            for sample_id, reason in list(aside.items())[:20]:
                console.print(f"  {sample_id}: {reason}", highlight=False, soft_wrap=True)
            if len(aside) > 20:
                console.print(f"  ... and {len(aside) - 20} more")
        people = project.store.labeller_counts()
        if people:
            who = Table(title="labellers", show_header=True)
            who.add_column("labeller")
            who.add_column("answers", justify="right")
            who.add_column("second answers", justify="right")
            for name, n in people.items():
                who.add_row(name, str(n["answers"]), str(n["second"]))
            console.print(who)
        pairs = project.store.double_labeled()
        wanted = project.store.progress()["second_wanted"]
        if pairs or wanted:
            a = agreement([(first, second) for _, first, second in pairs])
            kappa = f"{a['kappa']:.3f}" if a["kappa"] is not None else "undefined (too few pairs or one class)"
            agree = f"{a['agree']:.1%}" if a["agree"] is not None else "-"
            console.print(f"double labelling: {a['n']} samples answered twice, {wanted} awaiting a second answer; "
                          f"agreement {agree}, Cohen's kappa {kappa}", highlight=False)
            disagreements = [(s, f, t) for s, f, t in pairs if f != t]
            for sample_id, first, second in disagreements[:10]:
                console.print(f"  {sample_id}: {first!r} then {second!r} (the first is kept; `bmmal import "
                              "--overwrite` changes it)", highlight=False)
        info = project.model_info()
        if info is None:
            console.print("no model yet (one is trained by `bmmal query` once there are labels)")
        else:
            _print_model(console, info)

    @app.command("label")
    def label(
        directory: ProjectDir,
        host: Annotated[str, typer.Option(help="address to listen on (127.0.0.1 or ::1: this computer only; "
                                               "anything else needs the access tokens printed at start)")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free port)")] = 8765,
        labeller: Annotated[list[str], typer.Option(help="a labeller's name (repeatable): each gets an access "
                                                         "token of their own, and their answers carry the name")]
        = [],  # noqa: B006
        allow_host: Annotated[list[str], typer.Option(help="another name or address that browsers reach this "
                                                           "server by (repeatable); the Host header is checked")]
        = [],  # noqa: B006
        double_label: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of the pending samples that a "
                                                    "second named labeller answers too (agreement in status)")]
        = 0.0,
    ):
        """Serve the labelling page for the pending samples; every answer is saved at once."""
        from bmmal.labelling.project import Project

        try:
            from bmmal.labelling.server import LabelServer
        except ImportError as e:
            raise BmmalError(f"bmmal label needs the web server packages ({e.name} is missing): "
                             "pip install 'bmmal[label]'") from None
        project = Project(directory)
        if not project.store.pending():
            raise BmmalError(f"{project.dir} has no pending samples; run `bmmal query {quote(str(project.dir))} "
                             "--budget N` first")
        names = tuple(dict.fromkeys(n.strip() for n in labeller if n.strip()))
        if double_label:
            marked = project.store.mark_double(double_label, f"{project.settings.seed}:double")
            console.print(f"{marked} pending samples are to be answered by two labellers")
        server = LabelServer(project, host, port, labellers=names, allow_hosts=tuple(allow_host))
        if server.restored:
            console.print(f"{len(server.restored)} set-aside samples are whole again and will be served")
        pending = len(project.store.pending())
        if names:
            console.print(f"labelling {pending} pending samples; one address per labeller (each holds the "
                          "labeller's access token: hand it to that person only; it is printed only now):")
            for name in names:
                console.print(f"  {name}: {server.url(name)}", highlight=False, soft_wrap=True)
        else:
            console.print(f"labelling {pending} pending samples at {server.url()}", highlight=False, soft_wrap=True)
            if server.access.tokens:
                console.print("  (the address holds the access token, printed only now: share it with your "
                              "labellers only)")
        console.print("Ctrl+C stops; answers are saved as they are given")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.socket.close()
        console.print("stopped; every answer given is saved")

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
        project = Project(directory, read_only=True)
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
