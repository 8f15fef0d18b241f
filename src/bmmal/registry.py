"""A registry of classes by name, for the things users choose in configs (strategies, trainers)."""

from __future__ import annotations

from bmmal.errors import BmmalError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Class decorator: make the class available under `cls.name`."""
        self._classes[cls.name] = cls
        return cls

    def available(self) -> list[str]:
        return sorted(self._classes)

    def cls(self, name: str) -> type:
        if name not in self._classes:
            raise BmmalError(f"unknown {self.kind} {name!r}; available: {', '.join(self.available())}")
        return self._classes[name]

    def get(self, name: str, **params):
        """An instance; wrong parameters are a one-line error."""
        cls = self.cls(name)
        try:
            return cls(**params)
        except TypeError as e:
            raise BmmalError(f"{self.kind} {name!r}: bad parameters ({e})") from None
