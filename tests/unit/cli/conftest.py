"""Fixtures of the fast CLI tests: ``main([...])`` in-process, fake backends, synthetic photos.

The fake detector finds the squares that :mod:`faceindex.testing.synthetic` draws (one per
person id) and the fake embedder gives every photo of one person nearly the same vector,
so every command runs end to end in milliseconds, with no model loaded.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import FAKE_SETTINGS, Photos, Result, Run

from faceindex.cli.context import CliContext
from faceindex.cli.main import main
from faceindex.config import GallerySettings
from faceindex.testing.synthetic import synthetic_photo_bytes


@functools.cache
def _png(people: tuple[int, ...], variant: int = 0) -> bytes:
    """Each synthetic photo is drawn and encoded once per test session (~10 ms each)."""
    return synthetic_photo_bytes(list(people), variant=variant)


@pytest.fixture()
def photos(tmp_path: Path) -> Photos:
    root = tmp_path / "photos"
    people = root / "people"
    for person in (1, 2):
        (people / f"p{person}").mkdir(parents=True)
        for variant in range(3):
            path = people / f"p{person}" / f"{variant}.png"
            path.write_bytes(_png((person,), variant))
    two, stranger, blank, broken = (root / n for n in ("two.png", "s.png", "b.png", "x.jpg"))
    two.write_bytes(_png((1, 2), 5))
    stranger.write_bytes(_png((9,)))
    blank.write_bytes(_png(()))
    broken.write_bytes(b"not an image at all")
    return Photos(root, people, two, stranger, blank, broken)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FACEINDEX_* variable of the developer's shell reaches these tests."""
    import os

    for key in list(os.environ):
        if key.startswith("FACEINDEX_"):
            monkeypatch.delenv(key)


@pytest.fixture()
def gallery_path(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str], gallery_path: Path) -> Iterator[Run]:
    """``cli(*argv)``: ``faceindex ARGV`` with fake backends and a gallery in tmp_path
    (flags still apply on top); returns exit code, stdout and stderr."""
    base = dataclasses.replace(FAKE_SETTINGS, gallery=GallerySettings(path=str(gallery_path)))

    def run(*argv: str | Path) -> Result:
        code = main(
            [str(a) for a in argv], context_factory=lambda args: CliContext(args, settings=base)
        )
        out, err = capsys.readouterr()
        return Result(code, out, err)

    yield run
