"""The gallery of known people: persistent store, enrolment, 1:N identification, erasure.

``open_gallery(path)`` gives a :class:`~faceindex.gallery.service.Gallery`; the embedded
default store is SQLite (:mod:`faceindex.gallery.store`), at ``FACEINDEX_GALLERY`` or under
the user data folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceindex.gallery.service import Gallery

ENV_VAR = "FACEINDEX_GALLERY"


def default_gallery_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("faceindex", appauthor=False)) / "gallery.db"


def open_gallery(path: str | Path | None = None, **options: Any) -> Gallery:
    """Open (creating if needed) the gallery at ``path``; see :class:`Gallery` for options."""
    from faceindex.gallery.service import Gallery

    return Gallery.open(Path(path) if path is not None else default_gallery_path(), **options)
