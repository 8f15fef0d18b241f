"""The `bmmal` command. Bad input ends with one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bmmal.errors import BmmalError, Interrupted

try:  # the click that typer parses with: its own copy in recent typer, click itself in older ones
    from typer._click.exceptions import ClickException, NoSuchOption
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoSuchOption

app = typer.Typer(help="Balanced multimodal active learning.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
console = Console()


@app.callback()
def _everywhere(allow_download: Annotated[bool, typer.Option(
        "--allow-download", help="let models named in extractors (st:, hf:, timm:, open_clip:) be downloaded into "
                                 "the local caches when missing (never under HF_HUB_OFFLINE)")] = False):
    """Balanced multimodal active learning."""
    if allow_download:
        from bmmal.features.named import ALLOW_DOWNLOAD_ENV

        os.environ[ALLOW_DOWNLOAD_ENV] = "1"  # inherited by benchmark worker processes


def _strategy_list(value: str) -> list[str]:
    from bmmal.resolve import check_strategy_names

    return check_strategy_names([s.strip() for s in value.split(",") if s.strip()])


TRACK_HELP = "log every round to tensorboard and/or mlflow (comma-separated; sets tracking.to)"


def _with_tracking(settings: dict, track: str | None) -> dict:
    """Run settings with `tracking.to` set from --track; the config's other tracking settings are kept."""
    if track is None:
        return settings
    from bmmal.tracking import parse_trackers

    tracking = settings.get("tracking") if isinstance(settings.get("tracking"), dict) else {}
    return {**settings, "tracking": {**tracking, "to": list(parse_trackers(track))}}


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="output directory")] = Path("demo-output"),
    strategies: Annotated[str, typer.Option(help="comma-separated strategy names")] = "random,badge,bmmal",
    seeds: Annotated[int, typer.Option(min=1, help="number of seeds")] = 3,
    rounds: Annotated[int, typer.Option(min=1, help="rounds after round 0")] = 8,
    budget: Annotated[int, typer.Option(min=1, help="labels in round 0 and per round")] = 20,
):
    """Run the demo on the embedded mfeat data (a strong and a weak view), a few seeds, in about a minute."""
    from bmmal.demo import run_demo

    run_demo(out, _strategy_list(strategies), seeds, rounds, budget, console)


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML run configuration")],
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/<dataset>-<strategy>[-<trainer>]-seed<seed>)")]
    = None,
    strategy: Annotated[str | None, typer.Option(help="override the config's strategy")] = None,
    seed: Annotated[int | None, typer.Option(help="override the config's seed")] = None,
    trainer: Annotated[str | None, typer.Option(help="override the config's trainer (train.trainer; its "
                                                      "train.trainer_params are dropped when the name changes)")]
    = None,
    data_dir: Annotated[Path | None, typer.Option(help="dataset root on disk (sets dataset.options.root)")] = None,
    track: Annotated[str | None, typer.Option(help=TRACK_HELP)] = None,
):
    """Run one active-learning experiment from a config file."""
    from bmmal.config import load_yaml
    from bmmal.resolve import run_config

    data = load_yaml(config)
    if isinstance(data, dict):
        data = {**data, **({"strategy": strategy} if strategy else {}), **({"seed": seed} if seed is not None else {})}
        if trainer and isinstance(data.get("train", {}), dict):
            train = data.get("train", {})
            keep = train.get("trainer", "joint") == trainer
            data["train"] = {**{k: v for k, v in train.items() if keep or k != "trainer_params"}, "trainer": trainer}
        if data_dir is not None:
            dataset = data.get("dataset") if isinstance(data.get("dataset"), dict) else {}
            options = dataset.get("options") if isinstance(dataset.get("options"), dict) else {}
            data["dataset"] = {**dataset, "options": {**options, "root": str(data_dir)}}
        data = _with_tracking(data, track)
    cfg = run_config(data, source=str(config))
    trainer_part = "" if cfg.train.trainer == "joint" else f"-{cfg.train.trainer}"
    out = out or Path("runs") / f"{cfg.dataset.name}-{cfg.strategy}{trainer_part}-seed{cfg.seed}"
    _run_learner(lambda on_round: _new_learner(cfg, out, on_round), cfg.rounds)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="a run directory written by `bmmal run`")]):
    """Continue an interrupted run to the same result an uninterrupted one gives."""
    from bmmal.loop import ActiveLearner
    from bmmal.resolve import check_run_config
    from bmmal.rundir import RunDirectory

    directory = RunDirectory(run_dir)
    cfg = check_run_config(directory.config(), str(directory.path / directory.CONFIG))
    _run_learner(lambda on_round: ActiveLearner.resume(run_dir, on_round=on_round), cfg.rounds)


@contextlib.contextmanager
def _continue_with(command: str, saved):
    """Turn Ctrl-C into a message saying what is saved (`saved()`) and the exact command that continues."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {saved()}; continue with `{command}`") from None


def _new_learner(cfg, out, on_round):
    from bmmal.loop import ActiveLearner

    return ActiveLearner(cfg, out, on_round=on_round)


def _probe_cell(value: float | None) -> str:
    """A probe accuracy, or '-' where there is none (NaN: the labeled rows hold a single class)."""
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _rounds_columns(probed: tuple[str, ...]):
    """The per-round table's value columns, each a two-word header and the cell of a metrics row: the main ones
    and the linear-probe accuracy of each modality in `probed` (none unless the run sets `probes`)."""
    main = [(("acc.", "micro"), lambda row: f"{row['accuracy_micro']:.4f}"),
            (("acc.", "macro"), lambda row: f"{row['accuracy_macro']:.4f}"),
            (("query", "s"), lambda row: f"{row.get('query_seconds', 0) or 0:.3f}"),
            (("train", "s"), lambda row: f"{row['train_seconds']:.2f}")]
    probes = [(("probe", m), lambda row, m=m: _probe_cell(row.get(f"probe_accuracy_micro:{m}"))) for m in probed]
    return main, probes


def _table(title: str, columns, rows, two_line: bool) -> Table:
    """A table of round, labels and `columns` with a line per metrics row; cells never wrap or get cut, the
    headers take two lines where `two_line` (so that a table of many columns fits a narrow console)."""
    table = Table(title=title)
    for header, _ in ((("", "round"), None), (("", "labels"), None), *columns):
        table.add_column(("\n" if two_line else " ").join(header).strip(), justify="right", no_wrap=True)
    for row in rows:
        table.add_row(str(row["round"]), str(row["n_labeled"]), *(cell(row) for _, cell in columns))
    return table


def _rounds_tables(target: Console, rows, probed: tuple[str, ...]) -> list[Table]:
    """The per-round table, as wide as `target` allows: one table if it fits (headers on two lines if that
    makes it fit), otherwise the main columns and then the probe columns in as many tables as they need.
    Numbers are never cut to fit (rich would end them with '...' at 80 columns, its width in a pipe)."""
    from rich.measure import Measurement

    def fits(table: Table) -> bool:
        unbounded = target.options.update_width(sys.maxsize)  # the table's own width, not one cut to fit
        return Measurement.get(target, unbounded, table).maximum <= target.width

    main, probes = _rounds_columns(probed)
    everything = [*main[:2], *probes, *main[2:]]
    for two_line in (False, True):
        if fits(table := _table("rounds", everything, rows, two_line)):
            return [table]
    tables = [_table("rounds", main, rows, two_line=not fits(_table("rounds", main, rows, False)))]
    chunk: list = []
    for column in probes:  # greedily: each probe table holds as many probe columns as fit
        if chunk and not fits(_table("linear probes", [*chunk, column], rows, True)):
            tables.append(_table("linear probes", chunk, rows, True))
            chunk = []
        chunk.append(column)
    if chunk:
        tables.append(_table("linear probes", chunk, rows, True))
    return tables


def _run_learner(make, rounds: int) -> None:
    from bmmal.progress import Steps, run_header

    def on_round(row):
        steps.step(f"round {row['round']}, {row['n_labeled']} labels", row["accuracy_micro"])
        rows.append(row)

    def print_table():
        for table in _rounds_tables(console, rows, probed):
            console.print(table)

    learner = make(on_round)
    probed = tuple(learner.train_set.modalities) if learner.config.probes else ()
    rows = list(learner.history)  # rounds finished before a resume
    if learner.completed_round >= rounds:
        print_table()
        console.print(f"{learner.run_dir.path} is complete (rounds 0-{learner.completed_round}); nothing to do",
                      highlight=False)
        return
    for line in run_header(learner.config, learner.train_set):
        console.print(line, highlight=False)
    with Steps(console, "rounds", rounds + 1, done=learner.completed_round + 1) as steps, \
            _continue_with(f"bmmal resume {shlex.quote(str(learner.run_dir.path))}",
                           lambda: f"rounds 0-{learner.completed_round} are saved in {learner.run_dir.path}"
                           if learner.completed_round >= 0 else f"no round was finished in {learner.run_dir.path}"):
        learner.run()
    print_table()
    console.print(f"run directory: {learner.run_dir.path}  (metrics.csv, state.json, config.yaml)")


@app.command()
def benchmark(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML benchmark configuration")],
    out: Annotated[Path | None, typer.Option(help="benchmark directory (default benchmarks/runs/<name>)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="cells run at the same time")] = 1,
    executor: Annotated[str, typer.Option(help="local (worker processes) or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start Ray locally)")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads per cell (default cores / workers)")]
    = None,
    track: Annotated[str | None, typer.Option(help=TRACK_HELP + " for every cell")] = None,
):
    """Run a grid of datasets x settings x strategies x seeds; finished cells are reused, interrupted ones resume."""
    from bmmal.experiment.executors import default_threads, make_executor
    from bmmal.experiment.grid import load_benchmark_config
    from bmmal.experiment.runner import run_benchmark

    cfg = load_benchmark_config(config)
    cfg = cfg.model_copy(update={"base": _with_tracking(cfg.base, track)})
    threads = threads or default_threads(workers)
    out = out or Path("benchmarks/runs") / cfg.name
    again = shlex.join(["bmmal", "benchmark", "--config", str(config), "--out", str(out)])
    with _continue_with(again, lambda: f"finished cells and every cell's finished rounds are saved in {out}"):
        run_benchmark(cfg, out, make_executor(executor, workers, threads, address), threads, console)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a benchmark directory written by `bmmal benchmark`")]):
    """Write report.md and PNG figures for a benchmark: accuracy, AULC, paired tests, modality balance."""
    from bmmal.experiment.report import write_report

    path = write_report(run_dir)
    console.print(f"report: {path}")


@app.command("strategies")
def list_strategies():
    """List the available strategies: name, what it selects, and what it needs from the model; a strategy
    from another package names the package, one that cannot be loaded says why. A table on a terminal,
    one line per strategy otherwise."""
    from bmmal.strategies.registry import STRATEGIES

    rows = []
    for name in STRATEGIES.available():
        try:
            cls = STRATEGIES.lookup(name)
        except BmmalError as e:  # a broken third-party package must not hide the other strategies
            rows.append((name, f"[red]{escape(str(e))}[/]", "?"))
            continue
        origin = STRATEGIES.origin(name)
        source = "" if origin == "bmmal" else f" [dim]({escape(origin)})[/]"
        rows.append((name, escape(cls.summary) + source, ", ".join(sorted(cls.needs)) or "-"))
    if not console.is_terminal:  # a log or a pipe: one line per strategy, for grep
        for name, selects, needs in rows:
            console.print(f"{name:<18} {selects}  (needs: {needs})", soft_wrap=True, highlight=False)
        return
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=True)
    table.add_column("strategy", style="bold", no_wrap=True)
    table.add_column("selects", ratio=3, overflow="fold")
    table.add_column("needs", style="dim", ratio=1, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)  # fits the terminal: wrapped text stays in its column


@app.command("datasets")
def list_datasets():
    """List the available datasets."""
    from bmmal import datasets

    for name in datasets.available():
        console.print(name)


def _register_labelling() -> None:
    from bmmal.labelling.commands import register

    register(app, console)


_register_labelling()  # init, query, status, label, export, import


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr; the file and line of the code that warned only for unexpected ones."""
    from bmmal.errors import BmmalWarning

    where = "" if issubclass(category, BmmalWarning) else f" ({category.__name__}, {filename}:{lineno})"
    Console(stderr=True).print(f"[yellow]warning:[/] {escape(str(message))}{escape(where)}", highlight=False,
                               soft_wrap=True)


def file_system_problem(error: OSError) -> str:
    """One line naming the path(s) and what the operating system said, e.g. "runs/x: Not a directory"."""
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    reason = error.strerror or type(error).__name__
    return f"{' -> '.join(paths)}: {reason}" if paths else " ".join(str(error).split()) or reason


def _command_path(argv: list[str]) -> str:
    """The command that `argv` names ("bmmal run"), for the errors click raises without one (a missing value)."""
    command, path = typer.main.get_command(app), ["bmmal"]
    for token in argv:
        if token.startswith("-"):  # an option of bmmal itself (--allow-download), before the command
            continue
        subcommands = getattr(command, "commands", {})
        if token not in subcommands:
            break
        command = subcommands[token]
        path.append(token)
    return " ".join(path)


def _close_options(error: NoSuchOption) -> list[str]:
    """click's suggestions for an unknown option, kept only when the names are close without their dashes
    ('--confg' -> '--config'; not '--bogus' -> '--out', which the shared '--' makes look close)."""
    import difflib

    unknown = error.option_name.lstrip("-")
    return [p for p in error.possibilities or ()
            if difflib.SequenceMatcher(None, unknown, p.lstrip("-")).ratio() >= 0.6]


def usage_problem(error: ClickException, argv: list[str]) -> str | None:
    """A command-line parsing error as one line ("bmmal run: No such option: --x (see 'bmmal run --help')"),
    or None for the help that `bmmal` alone prints (already shown)."""
    if type(error).__name__ == "NoArgsIsHelpError":  # click >= 8.2, as typer itself tells it apart
        return None
    if isinstance(error, NoSuchOption):
        error.possibilities = _close_options(error)
    ctx = getattr(error, "ctx", None)
    path = ctx.command_path if ctx is not None else _command_path(argv)
    message = " ".join(error.format_message().split()).rstrip(".")
    return f"{path}: {message} (see '{path} --help')"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    import warnings

    from bmmal.progress import shown

    try:
        with shown(console), warnings.catch_warnings():  # library code shows its progress and warnings here
            warnings.showwarning = _show_warning
            code = app(args=argv, prog_name="bmmal", standalone_mode=False)  # usage errors raise, see below
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except ClickException as e:  # a bad option, value or command: one line, not typer's boxed usage message
        problem = usage_problem(e, sys.argv[1:] if argv is None else argv)
        if problem is not None:
            Console(stderr=True).print(f"[red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Abort:  # typer's answer to an EOFError in a command (standalone typer printed "Aborted!")
        Console(stderr=True).print("aborted: unexpected end of input", highlight=False)
        return 1
    except BmmalError as e:
        # the message is text, not markup: "pip install 'bmmal[ray]'" must keep its [ray]
        Console(stderr=True).print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 2
    except OSError as e:  # --out is a file, a folder that cannot be written, a path that cannot be read, ...
        Console(stderr=True).print(f"[red]error:[/] {escape(file_system_problem(e))}", highlight=False,
                                   soft_wrap=True)
        return 2
    except Interrupted as e:
        Console(stderr=True).print(escape(str(e)), highlight=False, soft_wrap=True)
        return 130
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted", highlight=False)
        return 130
    return code if isinstance(code, int) else 0  # typer.Exit(code) returns its code; a finished command None


if __name__ == "__main__":
    sys.exit(main())
