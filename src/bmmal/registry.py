"""Registries of the named things users choose in configs: strategies, trainers, datasets, feature
extractors and encoders. All five work the same way.

A name gets into a registry in one of three ways:
- built-in: a lazy "package.module:attr" target, imported on first use (so `import bmmal` stays light);
- the `register` decorator: `@STRATEGIES.register` on a class with a `name` attribute, or
  `@DATASETS.register("name")` on any class or function;
- a third-party package: a Python entry point in the registry's group (`bmmal.strategies`, ...),
  discovered on the first lookup. Entry points work in every process, spawned benchmark workers included,
  because they are part of the installed package rather than of the script that imported it.

A name registered from two different places is an error naming both; registering the same place again
(a module imported twice, a decorator on a built-in's own class) is not.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from bmmal.errors import BmmalError, did_you_mean


def place_of(obj: Any) -> str:
    """"module:qualname", where an object is defined."""
    return f"{obj.__module__}:{obj.__qualname__}"


def import_target(target: str) -> Any:
    """The object at "package.module:attr" (attr may be dotted)."""
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise BmmalError(f"{target!r} is not a 'package.module:attr' target")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Entry:
    target: str  # "module:attr", where the object lives
    origin: str  # who registered it: "bmmal", "package acme 0.1", "register()"
    obj: Any = None  # the object, once imported

    def describe(self) -> str:
        return f"{self.target} ({self.origin})"


class Registry:
    """Names -> classes or factories of one kind, e.g. `Registry("strategy", "bmmal.strategies", {...})`.

    `named`: entries are classes whose `name` attribute must equal their registered name.
    """

    def __init__(self, kind: str, group: str, builtins: dict[str, str] | None = None, *, named: bool = False):
        self.kind, self.group, self.named = kind, group, named
        self._entries: dict[str, Entry] = {}
        self._loading: dict[str, Entry | None] = {}  # names being imported by `lookup` -> decorated meanwhile
        self._discovered = False
        for name, target in (builtins or {}).items():
            self._add(name, Entry(target, "bmmal"))

    # registration -------------------------------------------------------------------------------------

    def register(self, item: Any = None, target: Any = None):
        """`@register` on a class with a `name`; `@register("name")` on any class or function;
        `register("name", "module:attr")` or `register("name", obj)` directly."""
        if isinstance(item, str) and target is None:
            return lambda obj: self.register(item, obj)
        if not isinstance(item, str):
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                raise BmmalError(f"@register on {item!r}: a {self.kind} class needs a `name`, "
                                 f"or register it as @register('some-name')")
            item, target = name, item
        if isinstance(target, str):
            self._add(item, Entry(target, "register()"))
            return target
        self._check_name(item, target, place_of(target))
        self._add(item, Entry(place_of(target), "register()", target))
        return target

    def _add(self, name: str, entry: Entry) -> None:
        if not isinstance(name, str) or not name:
            raise BmmalError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        old = self._entries.get(name)
        if old is None:
            self._entries[name] = entry
        elif old.target == entry.target:  # e.g. the decorator on a built-in's own class: keep its origin
            old.obj = entry.obj if entry.obj is not None else old.obj
        elif name in self._loading and entry.obj is not None:  # decorated while its target is imported
            self._loading[name] = entry
        else:
            raise BmmalError(f"{self.kind} {name!r} is registered twice: by {old.describe()} and by {entry.describe()}")

    def _discover(self) -> None:
        """Add the entry points of installed packages, once (a clash is an error on every lookup until fixed)."""
        if self._discovered:
            return
        for ep in entry_points(group=self.group):
            dist = f"package {ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an installed package"
            self._add(ep.name, Entry(ep.value, f"{dist}, entry point {self.group}"))
        self._discovered = True

    # lookup -----------------------------------------------------------------------------------------

    def available(self) -> list[str]:
        """Every registered name (built-in, registered, or from an installed package's entry point), sorted."""
        self._discover()
        return sorted(self._entries)

    def origin(self, name: str) -> str:
        """Where `name` comes from: "bmmal", "package acme 0.1, entry point ...", or "register()"."""
        return self._entry(name).origin

    def _entry(self, name: str) -> Entry:
        self._discover()
        if name not in self._entries:
            names = self.available()
            raise BmmalError(f"unknown {self.kind} {name!r}{did_you_mean(name, names)}; available: {', '.join(names)}")
        return self._entries[name]

    def lookup(self, name: str) -> Any:
        """The registered class or factory, importing it on first use."""
        entry = self._entry(name)
        if entry.obj is None:
            self._loading[name] = None
            try:
                obj = import_target(entry.target)
            except BmmalError:
                raise
            except Exception as e:  # a broken third-party package: one line, not a traceback
                reason = " ".join(f"{type(e).__name__}: {e}".split())
                raise BmmalError(f"{self.kind} {name!r} from {entry.describe()} cannot be loaded: {reason}") from e
            finally:
                decorated = self._loading.pop(name)
            if decorated is not None and decorated.obj is not obj:
                raise BmmalError(f"{self.kind} {name!r} is registered twice: by {entry.describe()} "
                                 f"and by {decorated.describe()}")
            self._check_name(name, obj, entry.describe())
            entry.obj = obj
        return entry.obj

    def _check_name(self, name: str, obj: Any, where: str) -> None:
        if self.named and getattr(obj, "name", None) != name:
            raise BmmalError(f"{self.kind} {name!r} from {where} has name {getattr(obj, 'name', None)!r}; "
                             f"the two must agree")

    def get(self, name: str, **params):
        """An instance; wrong parameters are a one-line error."""
        factory = self.lookup(name)
        unknown, takes = _unknown_parameters(factory, params)
        if unknown:
            raise BmmalError(f"{self.kind} {name!r}: unknown parameter {unknown!r}{did_you_mean(unknown, takes)}; "
                             f"its parameters: {', '.join(takes) or 'none'}")
        try:
            return factory(**params)
        except TypeError as e:
            raise BmmalError(f"{self.kind} {name!r}: bad parameters ({e})") from None


def _unknown_parameters(factory: Any, params: dict) -> tuple[str | None, list[str]]:
    """The first of `params` that `factory` does not take (None if it takes them all, or any keyword), and
    the keyword parameters it does take."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None, []
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return None, []
    takes = [n for n, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(params) - set(takes))
    return (unknown[0] if unknown else None), takes
