"""Load-once, thread-safe holders for heavy model objects.

Each backend instance owns its ``Lazy`` holders, so the cache lives with the pipeline (or
app) that created it rather than in a module global, and two pipelines never share state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """Calls ``factory`` on the first :meth:`get`, exactly once even under threads."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def get(self) -> T:
        if self._loaded:
            return self._value  # type: ignore[return-value]
        with self._lock:
            if not self._loaded:
                self._value = self._factory()
                self._loaded = True
        return self._value
