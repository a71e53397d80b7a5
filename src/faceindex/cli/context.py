"""What a command works with: settings, pipeline, gallery, API key ring, output.

:class:`CliContext` is the one place where the command line meets the library. It builds
:class:`~faceindex.config.Settings` from the environment (``Settings.from_env``) and
applies the shared flags of :mod:`faceindex.cli.options` on top (``--detector``,
``--min-face``, ``--embedder``, ``--threshold``, ``--flip``, ``--gallery``,
``--key-file``, ``--keep-photos``). The pipeline, the gallery and the key ring are made
on first use, so ``faceindex models`` loads no store and ``faceindex people list`` builds
no detector, and closed by :meth:`CliContext.close` (the context is a context manager;
:func:`faceindex.cli.main.main` holds it around the handler).

Tests hand :func:`~faceindex.cli.main.main` a ``context_factory`` that builds a context
around ready-made settings or a ready-made pipeline (already loaded models, fakes); what
is handed in is used but never closed here.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceindex.cli.output import Output

if TYPE_CHECKING:
    from faceindex.apikeys import KeyRing
    from faceindex.config import Settings
    from faceindex.gallery import Gallery, Person
    from faceindex.pipeline import Pipeline


class CliContext:
    """Lazily built resources of one command run; see the module docstring."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        settings: Settings | None = None,
        pipeline: Pipeline | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``settings`` replaces ``Settings.from_env(environ)`` as the base the flags are
        applied to; ``pipeline`` is used instead of building one (and not closed)."""
        self.args = args
        self.out = Output(
            json=bool(getattr(args, "json", False)), verbose=bool(getattr(args, "verbose", False))
        )
        self._base = settings
        self._environ = environ
        self._settings: Settings | None = None
        self._pipeline = pipeline
        self._gallery: Gallery | None = None
        self._keyring: KeyRing | None = None

    # -- settings and pipeline -----------------------------------------------------------

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from faceindex.config import Settings

            base = self._base if self._base is not None else Settings.from_env(self._environ)
            self._settings = apply_args(base, self.args)
        return self._settings

    @property
    def pipeline(self) -> Pipeline:
        """The recognition pipeline of the settings (cheap: models load on first use)."""
        if self._pipeline is None:
            from faceindex.pipeline import Pipeline

            self._pipeline = Pipeline.from_settings(self.settings)
        return self._pipeline

    # -- gallery -------------------------------------------------------------------------

    @property
    def gallery_given(self) -> bool:
        """Whether ``--gallery`` named a gallery (then it must exist where one is read)."""
        return bool(getattr(self.args, "gallery", None))

    @property
    def gallery_url(self) -> str | None:
        """The gallery's PostgreSQL URL, when ``--gallery`` (or ``$FACEINDEX_GALLERY``) is one."""
        from faceindex import pg

        configured = self.settings.gallery.path
        return configured.strip() if configured and pg.is_url(configured) else None

    @property
    def gallery_where(self) -> str:
        """The gallery's file or URL, for messages (a URL's password redacted)."""
        from faceindex import pg

        url = self.gallery_url
        return pg.redact(url) if url else str(self.gallery_path)

    @property
    def gallery_path(self) -> Path:
        """``--gallery``, else ``$FACEINDEX_GALLERY``, else gallery.db in the user data folder.
        A :class:`ConfigError` when that is a PostgreSQL URL (see :attr:`gallery_url`): what
        asks for a path needs a gallery file."""
        configured = self.settings.gallery.path
        if self.gallery_url:
            from faceindex.errors import ConfigError

            raise ConfigError(
                f"{self.gallery_where} is a PostgreSQL gallery: this needs a SQLite gallery file"
            )
        if configured:
            return Path(configured).expanduser()
        from faceindex.gallery import default_gallery_path

        return default_gallery_path()

    def gallery(
        self, *, must_exist: bool = False, pipeline: Pipeline | None = None, **options: Any
    ) -> Gallery:
        """The gallery, opened on the first call (later calls return it unchanged).

        ``must_exist``: a missing file is a ``NotFoundError`` and nothing is created (the
        commands that only read or change what is there: a mistyped ``--gallery`` must not
        answer from a new, empty gallery). Otherwise a missing gallery is created, and a
        line on stderr names the file (the commands that add to it: ``enroll``, ``keys
        create``, ``serve``). ``pipeline``: the one to identify with (default: the
        context's, when it has one; else the gallery builds one from the same settings if
        it needs it). ``options`` go to :func:`faceindex.gallery.open_gallery`.
        """
        if self._gallery is None and self.gallery_url:
            from faceindex.gallery import open_gallery

            # A database server: it exists or the connection fails (a clear StorageError);
            # the gallery's tables are made on first open.
            self._gallery = open_gallery(
                self.gallery_url,
                settings=self.settings,
                pipeline=pipeline if pipeline is not None else self._pipeline,
                **options,
            )
        if self._gallery is None:
            from faceindex.errors import NotFoundError, StorageError
            from faceindex.gallery import open_gallery

            path = self.gallery_path
            existed = path.exists()
            if must_exist and not existed:
                raise NotFoundError(self._missing_gallery(path), path=str(path))
            try:
                self._gallery = open_gallery(
                    path,
                    settings=self.settings,
                    pipeline=pipeline if pipeline is not None else self._pipeline,
                    **options,
                )
            except OSError as exc:  # its folder cannot be made or read: a storage problem
                reason = exc.strerror or str(exc)
                where = f" ({exc.filename})" if exc.filename else ""
                raise StorageError(
                    f"{path}: cannot open the gallery: {reason}{where}", path=str(path)
                ) from exc
            if not existed and path.exists():
                self.out.note(f"faceindex: created a new gallery: {path}")
        return self._gallery

    def _missing_gallery(self, path: Path) -> str:
        """Why no gallery was found, naming where its path came from."""
        if self.gallery_given:
            source = "given by --gallery"
        elif self.settings.gallery.path:
            source = "set by $FACEINDEX_GALLERY"
        else:
            source = "the default gallery"
        return (
            f"{path}: no such gallery ({source}). Check the path; 'faceindex enroll' "
            "creates a gallery, commands that only read it never do"
        )

    def person(self, text: str) -> Person:
        """The person a command-line reference names (:func:`~.options.person_ref`):
        ``#2`` is the id 2 and nothing else, ``name:X`` and plain text are names only."""
        from faceindex.cli.options import NAME_PREFIX, person_ref
        from faceindex.errors import NotFoundError

        ref = person_ref(text)
        gallery = self.gallery(must_exist=True)
        if isinstance(ref, int):
            try:
                return gallery.person(ref)
            except NotFoundError:
                raise NotFoundError(
                    f"no person #{ref} in the gallery (#N is always an id; for a person "
                    f"named {text.strip()!r}, write {NAME_PREFIX}{text.strip()})",
                    person=text,
                ) from None
        from faceindex.gallery import name_key

        person = gallery.person(ref)
        # Names match regardless of case, as in the gallery; the check is that the store
        # did not fall back to an id for a "#N" name.
        if name_key(person.name) != name_key(ref):
            raise NotFoundError(f"no person named {ref!r} in the gallery", person=ref)
        return person

    def keyring(self, *, must_exist: bool = False) -> KeyRing:
        """The REST API keys, kept in the gallery's file (opened with the gallery, so that
        a new file gets the gallery's tables too)."""
        if self._keyring is None:
            from faceindex.apikeys import KeyRing

            gallery = self.gallery(must_exist=must_exist)
            self._keyring = KeyRing.open(gallery.location, actor="cli")
        return self._keyring

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Close what this context opened (the key ring first, then the gallery)."""
        keyring, self._keyring = self._keyring, None
        gallery, self._gallery = self._gallery, None
        try:
            if keyring is not None:
                keyring.close()
        finally:
            if gallery is not None:
                gallery.close()

    def __enter__(self) -> CliContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def apply_args(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` with the shared flags of ``args`` applied (absent flags change nothing)."""

    def given(name: str) -> Any:
        return getattr(args, name, None)

    det, emb = settings.detection, settings.embedding
    gal, priv = settings.gallery, settings.privacy
    if given("detector"):
        det = dataclasses.replace(det, detector=args.detector)
    if given("min_face") is not None:
        det = dataclasses.replace(det, min_face_px=args.min_face)
    if given("embedder"):
        emb = dataclasses.replace(emb, embedder=args.embedder)
    if given("threshold") is not None:
        emb = dataclasses.replace(emb, threshold=args.threshold)
    if given("flip"):
        emb = dataclasses.replace(emb, flip=True)
    if given("gallery"):
        from faceindex import pg

        where = args.gallery.strip() if pg.is_url(args.gallery) else Path(args.gallery).expanduser()
        gal = dataclasses.replace(gal, path=str(where))
    if given("keep_photos"):
        gal = dataclasses.replace(gal, keep_photos=True)
    if given("key_file"):
        priv = dataclasses.replace(priv, key_file=str(Path(args.key_file).expanduser()))
    return dataclasses.replace(settings, detection=det, embedding=emb, gallery=gal, privacy=priv)


#: What ``register`` sets as ``handler=``: ``handler(args, ctx) -> exit code``.
Handler = Callable[[argparse.Namespace, CliContext], int]
#: What :func:`faceindex.cli.main.main` calls to make the context of a run.
ContextFactory = Callable[[argparse.Namespace], CliContext]
