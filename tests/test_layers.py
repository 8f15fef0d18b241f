"""Imports point down only: core <- engine <- applications (the layering the README's Layout states)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
CORE = {"errors", "storage", "registry", "config", "data", "pool", "outputs", "contribution", "strategies", "testing"}
APPLICATIONS = {"loop", "demo", "experiment", "labelling", "cli"}
# applications built on another one: a benchmark (and the demo, a small benchmark) is a grid of simulated loops
BUILT_ON = {"experiment": {"loop"}, "demo": {"experiment", "loop"}, "cli": APPLICATIONS}


def part(module: str) -> str:
    """The top-level part of bmmal a module belongs to ("strategies" for bmmal.strategies.badge)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def layer(module: str) -> str:
    top = part(module)
    return "core" if top in CORE else "application" if top in APPLICATIONS else "engine"


def imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bmmal"):
            if node.module == "bmmal":
                found += [(f"bmmal.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("bmmal.")]
    return found


def allowed(source: str, target: str) -> bool:
    if layer(source) == "core":
        return layer(target) == "core"
    if layer(source) == "engine":
        return layer(target) != "application"
    return layer(target) != "application" or part(target) == part(source) or part(target) in BUILT_ON.get(
        part(source), set())


MODULES = sorted(p for p in (SRC / "bmmal").rglob("*.py") if p.name != "__init__.py" or p.parent.name != "bmmal")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    source = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    wrong = [f"{target} (line {line})" for target, line in imports(path) if not allowed(source, target)]
    assert not wrong, f"{source} ({layer(source)}) imports upward or sideways: {', '.join(wrong)}"


def test_the_rules_can_fail():
    assert not allowed("bmmal.strategies.badge", "bmmal.models")
    assert not allowed("bmmal.rounds", "bmmal.loop")
    assert not allowed("bmmal.labelling.query", "bmmal.experiment.runner")
    assert allowed("bmmal.experiment.runner", "bmmal.loop") and allowed("bmmal.rounds", "bmmal.strategies")
