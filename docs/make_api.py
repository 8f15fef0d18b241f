"""Write docs/api.md, the API page, from the public names' signatures and docstrings.

    .venv/bin/python docs/make_api.py

Rerun it after changing a public function or class; tests/test_api_docs.py fails while a public name is
missing from the page or its signature there is out of date. The public names of a module are its
`__all__`, or, for a module without one, the names listed in MODULES below.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

PAGE = Path(__file__).with_name("api.md")

# module -> its public names when it has no __all__ (None: use __all__)
MODULES: dict[str, tuple[str, ...] | None] = {
    "bmmal": None,
    "bmmal.strategies": None,
    "bmmal.datasets": ("available", "load", "load_manifest", "load_arrays", "register"),
    "bmmal.data": ("MultimodalDataset", "ArrayDataset"),
    "bmmal.contribution": ("shapley", "contribution_shares", "dominance_scales"),
    "bmmal.tracking": None,
    "bmmal.testing": ("check_strategy", "contract_outputs", "VARIANTS"),
}

INTRO = """\
# API reference

The public functions and classes of bmmal, with their signatures and docstrings. This page is generated:
`.venv/bin/python docs/make_api.py` rewrites it, and `tests/test_api_docs.py` checks that every public
name is on it with its current signature. How the pieces fit together: README.md ("Use bmmal with your
own model"), docs/strategies.md, docs/method.md.
"""


class _Source(str):
    """An annotation kept as source text (postponed annotations), shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _readable(value: object) -> str:
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))  # no memory addresses: the page must be stable


def signature(obj: object) -> str:
    """`obj`'s call signature as one line: annotations as written in the source, defaults by repr."""
    sig = inspect.signature(obj)

    def annotation(a):
        return _Source(a) if isinstance(a, str) else a

    class _Default:
        def __init__(self, value):
            self.value = value

        def __repr__(self):
            return _readable(self.value)

    params = [p.replace(annotation=annotation(p.annotation),
                        default=p.default if p.default is p.empty else _Default(p.default))
              for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=annotation(sig.return_annotation)))


def public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = MODULES[module_name]
    if names is None:
        raise SystemExit(f"{module_name} has no __all__; list its public names in MODULES")
    return list(names)


def _doc(obj: object) -> str:
    return inspect.getdoc(obj) or ""


def _members(cls: type) -> list[tuple[str, object]]:
    """The public methods and properties a class defines itself (inherited ones are documented where defined)."""
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property) or inspect.isfunction(value):
            members.append((name, value))
    return members


def entries(module_name: str) -> list[tuple[str, str, str | None, str]]:
    """(heading level, heading, signature line or None, docstring) of every documented object of a module,
    in page order: its public names, each class followed by its own methods and properties."""
    module = importlib.import_module(module_name)
    out = []
    for name in public_names(module_name):
        obj = getattr(module, name)
        qualified = f"{module_name}.{name}"
        if inspect.ismodule(obj):
            continue  # documented in its own section
        if inspect.isclass(obj):
            out.append(("###", f"class `{qualified}`", _class_signature(obj), _own_doc(obj)))
            for member, value in _members(obj):
                if isinstance(value, property):
                    out.append(("####", f"`{name}.{member}` (property)", None, _doc(value)))
                else:
                    out.append(("####", f"`{name}.{member}`", f"{member}{signature(value)}", _doc(value)))
        elif callable(obj):
            out.append(("###", f"`{qualified}`", f"{name}{signature(obj)}", _doc(obj)))
        else:
            value = _readable(obj)
            out.append(("###", f"`{qualified}`", None, f"```python\n{name} = {value}\n```" if len(value) <= 100
                        else f"A constant: `{type(obj).__name__}`."))
    return out


def _own_doc(cls: type) -> str:
    """A class's own docstring (not one inherited from ABC, Protocol or object)."""
    doc = vars(cls).get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _class_signature(cls: type) -> str:
    """How a class is called, `Name(arguments)`, or, for a protocol, a base class or an exception, its
    definition line and the attributes it declares."""
    if not (getattr(cls, "_is_protocol", False) or inspect.isabstract(cls) or issubclass(cls, BaseException)):
        try:
            return f"{cls.__name__}{signature(cls)}".removesuffix(" -> None")
        except (TypeError, ValueError):
            pass
    bases = ", ".join(b.__name__ for b in cls.__bases__ if b is not object)
    lines = [f"class {cls.__name__}({bases}):" if bases else f"class {cls.__name__}:"]
    for name, annotation in vars(cls).get("__annotations__", {}).items():
        default = f" = {_readable(vars(cls)[name])}" if name in vars(cls) else ""
        lines.append(f"    {name}: {annotation}{default}")
    return "\n".join(lines if len(lines) > 1 else [lines[0] + " ..."])


def render() -> str:
    parts = [INTRO, "Modules: " + " · ".join(f"[`{m}`](#{m.replace('.', '')})" for m in MODULES) + "\n"]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        parts.append(f"## {module_name}\n")
        summary = _doc(module)
        if summary:
            parts.append(summary + "\n")
        for level, heading, sig, doc in entries(module_name):
            parts.append(f"{level} {heading}\n")
            if sig is not None:
                parts.append(f"```python\n{sig}\n```\n")
            if doc:
                parts.append(textwrap.dedent(doc).strip() + "\n")
    return "\n".join(parts)


def main() -> int:
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
