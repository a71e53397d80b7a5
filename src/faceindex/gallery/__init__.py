"""The gallery of known people: persistent store, enrolment, 1:N identification, erasure.

``open_gallery(path)`` gives a :class:`Gallery` (:mod:`faceindex.gallery.gallery`), the one
front door; the embedded default store is SQLite (:mod:`faceindex.gallery.store`); a
``postgresql://`` URL opens a PostgreSQL + pgvector store
(:mod:`faceindex.gallery.pg_store`). Nothing outside this package touches a store. Names
are resolved lazily, so importing this package loads neither the store nor a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceindex.config import PrivacySettings, Settings
    from faceindex.crypto import TemplateKey
    from faceindex.gallery.enrolment import EnrolmentReport, EnrolStatus, PhotoOutcome
    from faceindex.gallery.gallery import Gallery
    from faceindex.gallery.records import set_actor
    from faceindex.gallery.schema import name_key
    from faceindex.gallery.tables import Person, TemplateInfo
    from faceindex.gallery.transfer import ImportReport
    from faceindex.pipeline import Pipeline

__all__ = [
    "EnrolStatus",
    "EnrolmentReport",
    "Gallery",
    "ImportReport",
    "Person",
    "PhotoOutcome",
    "TemplateInfo",
    "default_gallery_path",
    "key_from_settings",
    "name_key",
    "open_gallery",
    "set_actor",
]

_LAZY = {
    "Gallery": "faceindex.gallery.gallery",
    "EnrolmentReport": "faceindex.gallery.enrolment",
    "EnrolStatus": "faceindex.gallery.enrolment",
    "PhotoOutcome": "faceindex.gallery.enrolment",
    "ImportReport": "faceindex.gallery.transfer",
    "Person": "faceindex.gallery.tables",
    "TemplateInfo": "faceindex.gallery.tables",
    "set_actor": "faceindex.gallery.records",
    "name_key": "faceindex.gallery.schema",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'faceindex.gallery' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def default_gallery_path() -> Path:
    """gallery.db in the user data folder (``settings.gallery.path`` overrides it)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("faceindex", appauthor=False)) / "gallery.db"


def key_from_settings(privacy: PrivacySettings) -> TemplateKey | None:
    """The template key the settings name: the key file, else the key text, else none."""
    from faceindex.crypto import TemplateKey

    if privacy.key_file:
        return TemplateKey.from_file(privacy.key_file)
    if privacy.key:
        return TemplateKey.from_text(privacy.key)
    return None


def open_gallery(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    pipeline: Pipeline | None = None,
    key: TemplateKey | None = None,
    **options: Any,
) -> Gallery:
    """Open (creating if needed) a gallery.

    ``path`` (a file, or a ``postgresql://user@host:port/db`` URL) None ->
    ``settings.gallery.path`` -> :func:`default_gallery_path`; ``key``
    None -> the key the settings name (``settings.privacy``); a ``pipeline`` None is built
    from the settings when first needed. ``options`` (``keep_photos``, ``index_backend``,
    ``threshold``, ``margin``, ``rule``, ``top_k``, ``actor``) override the settings.
    """
    from faceindex import pg
    from faceindex.config import Settings
    from faceindex.gallery.gallery import Gallery

    s = settings or Settings()
    given = path if path is not None else s.gallery.path
    if key is None:
        key = key_from_settings(s.privacy)
    if pg.is_url(given):
        where: str | Path = str(given).strip()
    else:
        where = (Path(given) if given else default_gallery_path()).expanduser()
    return Gallery.open(
        where,
        pipeline=pipeline,
        key=key,
        settings=s,
        **options,
    )
