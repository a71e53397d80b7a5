"""Helpers of the fast CLI tests (a module of its own: ``conftest`` is not importable
by name once several test folders have one)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceindex.config import DetectionSettings, EmbeddingSettings, Settings


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


@dataclass
class Photos:
    root: Path
    people: Path  # people/p1 (3 photos of person 1), people/p2 (3 of person 2)
    two: Path  # persons 1 and 2
    stranger: Path  # person 9, never enrolled
    blank: Path  # no face
    broken: Path  # not an image

    def of(self, person: int, variant: int = 0) -> Path:
        return self.people / f"p{person}" / f"{variant}.png"


FAKE_SETTINGS = Settings(
    detection=DetectionSettings(detector="fake"), embedding=EmbeddingSettings(embedder="fake")
)

#: ``cli(*argv) -> Result`` (the ``cli`` fixture).
Run = Callable[..., Result]
