"""The project speaks for itself: docs/api.md lists every public name with its current signature, and code
and docs point only to files inside the repository."""

import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api.md"


def _generator():
    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_api = _generator()
REGENERATE = "out of date: run .venv/bin/python docs/make_api.py"


@pytest.mark.parametrize("module_name", list(make_api.MODULES))
def test_every_public_name_is_on_the_api_page_with_its_signature(module_name):
    page = PAGE.read_text()
    assert f"\n## {module_name}\n" in page, f"docs/api.md has no section {module_name}; {REGENERATE}"
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", None) or make_api.MODULES[module_name]:
        if hasattr(getattr(module, name), "__path__") or type(getattr(module, name)).__name__ == "module":
            assert f"\n## {module_name}.{name}\n" in page, f"module {module_name}.{name} has no section"
        else:
            assert f" `{module_name}.{name}`" in page, f"{module_name}.{name} is not on docs/api.md; {REGENERATE}"
    for level, heading, signature, _ in make_api.entries(module_name):
        entry = f"\n{level} {heading}\n"
        assert entry in page, f"{heading} is not on docs/api.md; {REGENERATE}"
        if signature is not None:
            assert f"{entry}\n```python\n{signature}\n```\n" in page, \
                f"the signature of {heading} on docs/api.md is {REGENERATE}"


def test_the_api_page_has_no_stale_entries():
    expected = {f"{level} {heading}" for module in make_api.MODULES
                for level, heading, _, _ in make_api.entries(module)}
    for line in PAGE.read_text().splitlines():
        if line.startswith(("### ", "#### ")):
            assert line in expected, f"docs/api.md documents {line.split(' ', 1)[1]}, which is no longer public"


def test_rendered_signatures_are_inspect_signatures():
    """What the page shows is inspect.signature's text, only without quotes around source annotations."""
    import bmmal

    checked = 0
    for module_name in make_api.MODULES:
        module = importlib.import_module(module_name)
        for name in make_api.public_names(module_name):
            obj = getattr(module, name)
            if callable(obj) and not isinstance(obj, type):
                assert make_api.signature(obj).replace("'", "") == str(inspect.signature(obj)).replace("'", ""), name
                checked += 1
    assert checked >= 10
    assert make_api.signature(bmmal.pool_outputs).startswith("(model, data, labeled, needs: Iterable[str] = ('probs',)")


SOURCES = ["src", "docs", "tests", "configs", "benchmarks/RESULTS.md", "README.md", "Makefile", "pyproject.toml"]
MARKDOWN = re.compile(r"(?<![\w.-])((?:\.\./)*[\w./-]*\w\.md)\b")  # any mention of a Markdown file
DOC_PAGE = re.compile(r"\b(docs/[\w-]+\.md)\b")  # the project's own pages (configs/mine.yaml may be an example)


def _texts():
    for source in SOURCES:
        path = ROOT / source
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".py", ".md", ".yaml"))
        for file in files:
            if file.resolve() != Path(__file__).resolve() and "egg-info" not in str(file):
                yield file.relative_to(ROOT), file.read_text(errors="replace")


def points_outside(file: Path, mentioned: str) -> bool:
    """A Markdown file mentioned by `file` that is not in the repository (by its path from `file`'s folder or
    from the root, or by its name), or a relative path that climbs out of the repository."""
    here = (ROOT / file).parent
    if mentioned.startswith("../"):  # relative to the file only, and it must stay in the repository
        target = (here / mentioned).resolve()
        return not (target.is_relative_to(ROOT) and target.exists())
    return not ((here / mentioned).exists() or (ROOT / mentioned).exists() or Path(mentioned).name in MARKDOWN_NAMES)


MARKDOWN_NAMES = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts} | {"report.md"}  # reports write it


def test_code_and_docs_point_only_inside_the_repository():
    for name, text in _texts():
        for mentioned in MARKDOWN.findall(text) if name.parts[0] != "tests" else ():  # tests write such files
            assert not points_outside(name, mentioned), f"{name} points outside the repository: {mentioned!r}"
        for mentioned in DOC_PAGE.findall(text) if name.parts[0] != "tests" else ():
            assert (ROOT / mentioned).exists(), f"{name} mentions {mentioned}, which is not in the repository"


def test_the_outside_check_can_fail():
    assert points_outside(Path("docs/method.md"), "../../elsewhere/notes.md")
    assert points_outside(Path("src/bmmal/contribution.py"), "NOT_HERE.md")
    assert points_outside(Path("docs/method.md"), "../../")  # the folder holding the repository: exists, not in it
    assert not points_outside(Path("README.md"), "docs/api.md")
    assert not points_outside(Path("docs/api.md"), "../README.md")
