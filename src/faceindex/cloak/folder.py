"""Folder mode: which photos of a folder tree are cloaked to which output files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceindex.cloak.files import OUTPUT_FORMATS
from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.io.files import is_image_file

#: Photos of a format the cloak does not write (GIF, BMP, TIFF) are written as PNG.
FALLBACK_SUFFIX = ".png"


@dataclass(frozen=True, slots=True)
class Job:
    """One photo to cloak: from ``src`` to ``dst``."""

    src: Path
    dst: Path


def output_for(src: Path, src_root: Path, dst_root: Path) -> Path:
    """Where the cloak of ``src`` goes: the same path under ``dst_root``, with the same
    suffix where the cloak can write it, else ``.png``."""
    relative = src.relative_to(src_root)
    if relative.suffix.lower() not in OUTPUT_FORMATS:
        relative = relative.with_suffix(FALLBACK_SUFFIX)
    return dst_root / relative


def folder_jobs(src_root: str | Path, dst_root: str | Path) -> list[Job]:
    """Every photo under ``src_root`` (sub-folders too, hidden files and folders skipped,
    sorted by path) and its output under ``dst_root``. Outputs never come from inside
    ``dst_root``, so an output folder inside the input folder is not cloaked again."""
    src, dst = Path(src_root), Path(dst_root)
    if not src.is_dir():
        raise NotFoundError(f"{src}: no such folder", path=str(src))
    if dst.exists() and not dst.is_dir():
        raise InvalidInputError(f"{dst}: is a file; give a folder for the cloaked photos")
    if dst.resolve() == src.resolve():
        raise InvalidInputError(
            f"{dst}: the output folder is the input folder; give another one (the "
            "originals are never overwritten)",
            path=str(dst),
        )
    out_root = dst.resolve()
    jobs = []
    for path in sorted(src.rglob("*")):
        parts = path.relative_to(src).parts
        if any(p.startswith(".") for p in parts) or not path.is_file():
            continue
        if not is_image_file(path) or out_root in path.resolve().parents:
            continue
        jobs.append(Job(path, output_for(path, src, dst)))
    return jobs
