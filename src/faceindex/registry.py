"""A small generic registry of named, lazily imported backends.

Entries are ``"module:attr"`` strings so that importing faceindex imports no backend (and
so no dlib, onnxruntime or OpenCV). Names are kebab-case; an unknown name raises an error
that lists the valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from faceindex.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, role: str) -> None:
        self._role = role
        self._entries: dict[str, str] = {}

    def register(self, name: str, target: str) -> None:
        if name in self._entries and self._entries[name] != target:
            raise ConfigError(f"{self._role} {name!r} is already registered")
        if ":" not in target:
            raise ValueError(f"target must be 'module:attr', got {target!r}")
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """Import and return the registered object (a class or factory)."""
        try:
            target = self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self._role} {name!r}; valid: {', '.join(self.names())}",
                valid=self.names(),
            ) from None
        module_name, attr = target.split(":", 1)
        module = importlib.import_module(module_name)
        obj: T = getattr(module, attr)
        return obj
