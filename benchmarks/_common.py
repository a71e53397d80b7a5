"""Shared helpers of the benchmark scripts (not part of the package)."""

from __future__ import annotations

import itertools
import os
import resource
from collections.abc import Iterable
from pathlib import Path

from faceindex.io.files import photos_in
from faceindex.io.pairs import read_pairs

#: Photos of the dev set's faces/ folder that show Obama; the -NNNp files and
#: obama_small are one photo at several sizes, so pairs among them are not counted.
FACES_PEOPLE = {
    "obama.jpg": ("obama", "o1"),
    "obama2.jpg": ("obama", "o2"),
    "obama3.jpg": ("obama", "o3"),
    "obama-240p.jpg": ("obama", "o4"),
    "obama-480p.jpg": ("obama", "o4"),
    "obama-720p.jpg": ("obama", "o4"),
    "obama-1080p.jpg": ("obama", "o4"),
    "obama_small.jpg": ("obama", "o4"),
    "obama_partial_face.jpg": ("obama", "o5"),
    "obama_partial_face2.jpg": ("obama", "o6"),
    "biden.jpg": ("biden", "b1"),
    "alex-lacamoire.png": ("alex", "a1"),
    "lin-manuel-miranda.png": ("lin", "l1"),
}


def faces_pairs(faces_dir: Path) -> list[tuple[str, str, bool]]:
    """Genuine pairs: different Obama photos; impostor pairs: any two different people."""
    names = [n for n in FACES_PEOPLE if (faces_dir / n).is_file()]
    pairs = []
    for a, b in itertools.combinations(names, 2):
        (pa, photo_a), (pb, photo_b) = FACES_PEOPLE[a], FACES_PEOPLE[b]
        if pa == pb and photo_a == photo_b:
            continue
        pairs.append((a, b, pa == pb))
    return pairs


def csv_pairs(path: Path) -> list[tuple[str, str, bool]]:
    return [(p.a, p.b, bool(p.same)) for p in read_pairs(path, labelled=True).pairs]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def image_files(folder: Path) -> list[Path]:
    return photos_in(folder)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def fmt_table(rows: Iterable[list[str]]) -> str:
    rows = [list(r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
