"""Which files are photos, and the person-folder layout ``DIR/<person>/<photos>``.

One definition for every reader of photo folders: ``faceindex enroll --folders``,
``faceindex eval gallery`` (:func:`faceindex.eval.protocols.list_people`), ``faceindex
anonymize`` (photo or video?) and the benchmarks. Before this module each kept its own
suffix set, and they disagreed (``.gif`` was a photo to ``enroll`` only, ``.tif`` to all
but two benchmarks).

A photo is recognised by its name alone (:func:`is_image_file` never touches the disk, so
it also classifies an output path that does not exist yet); the decoder
(:mod:`faceindex.io.image`) is what finally decides whether the bytes are an image.
"""

from __future__ import annotations

from pathlib import Path

from faceindex.errors import NotFoundError

#: Suffixes (lower case) of the photos faceindex reads from folders: the union of what
#: its commands accepted before they shared this set. Pillow decodes all of them.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` names a photo, by its suffix (any case); the file need not exist."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _visible(path: Path) -> bool:
    # Dot-files are editor, OS and sync leftovers (".DS_Store", macOS "._photo.jpg"
    # resource forks that carry an image suffix but hold no image).
    return not path.name.startswith(".")


def photos_in(folder: str | Path) -> list[Path]:
    """The photos directly inside ``folder``, sorted by name (hidden files skipped)."""
    return sorted(
        p for p in Path(folder).iterdir() if p.is_file() and _visible(p) and is_image_file(p)
    )


def person_folders(root: str | Path) -> list[tuple[str, list[Path]]]:
    """``[(person, [photo, ...]), ...]`` for ``root/<person>/<photos>``, sorted by person.

    Each visible sub-folder of ``root`` is a person named after it; its photos are the
    image files directly inside it (sub-sub-folders are not searched), sorted by name.
    Folders without a photo are left out, so the list may be empty; a missing ``root`` is
    a :class:`~faceindex.errors.NotFoundError`.
    """
    base = Path(root)
    if not base.is_dir():
        raise NotFoundError(f"{base}: no such folder", path=str(base))
    people: list[tuple[str, list[Path]]] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and _visible(p)):
        photos = photos_in(folder)
        if photos:
            people.append((folder.name, photos))
    return people
