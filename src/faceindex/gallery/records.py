"""The part of a gallery that needs no model: people, the audit trail, erasure, keys.

No models here: this part of the gallery works without a pipeline, so listing or erasing
people never loads one. Every write is one transaction together with its audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from faceindex.calibration import Calibration
from faceindex.crypto import TemplateKey
from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.gallery.sealing import Sealer
from faceindex.gallery.store import GalleryStore, Person, TemplateInfo

if TYPE_CHECKING:
    from faceindex.gallery.integrity import CheckReport

#: Who is acting, for the audit log, when a front end serves several callers through one
#: gallery (the REST API sets it per request); falls back to the gallery's ``actor``.
_ACTOR: ContextVar[str | None] = ContextVar("faceindex_gallery_actor", default=None)


def set_actor(actor: str | None) -> None:
    """Name the caller for audit entries made in the current context (request, task)."""
    _ACTOR.set(actor)


#: The meta key under which a user's own calibration is stored.
CALIBRATION_KEY = "calibration"


class GalleryRecords:
    """A gallery's people, audit log, calibration and keys: everything that needs no model.

    :class:`~faceindex.gallery.gallery.Gallery` extends it with enrolment and search.
    """

    def __init__(self, store: GalleryStore, *, actor: str = "local") -> None:
        self._store = store
        self.actor = actor
        try:  # a gallery opened with a key keeps nothing in the clear (see sealing)
            self._seal_clear()
        except BaseException:
            store.close()
            raise

    def _refresh_index(self) -> None:
        """Called after templates are erased (a gallery with an index drops them)."""

    def _erased(self) -> None:
        self._store.finish_erasures()  # truncate the WAL so no erased vector lingers in it
        self._refresh_index()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what it is ---------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The gallery's file; a :class:`~faceindex.errors.ConfigError` for a PostgreSQL
        gallery, which has none (what needs a file says so)."""
        return self._store.path

    @property
    def location(self) -> str | Path:
        """Where the gallery lives, as it is opened: its file or its PostgreSQL URL (with
        any password, for components that open their own connection: never print it)."""
        return self._store.location

    @property
    def where(self) -> str:
        """Where the gallery lives, for messages and logs (a URL's password redacted)."""
        return self._store.where

    @property
    def model_id(self) -> str | None:
        """The embedding model of the gallery's templates (None while it has none)."""
        return self._store.model_id

    def current_actor(self) -> str:
        """The caller named by :func:`set_actor` in this context, else the gallery's actor."""
        return _ACTOR.get() or self.actor

    def calibration(self) -> Calibration | None:
        """The calibration stored with ``set_calibration`` (any model), if any."""
        raw = self._store.meta(CALIBRATION_KEY)
        return None if raw is None else Calibration.from_dict(json.loads(raw))

    # -- people and audit ---------------------------------------------------------------

    def people(
        self, *, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[Person]:
        return self._store.persons(search=search, offset=offset, limit=limit)

    def person(self, ref: int | str) -> Person:
        return self._store.person(ref)

    def count_people(self, search: str | None = None) -> int:
        return self._store.count_persons(search=search)

    def count_templates(self) -> int:
        return self._store.count_templates()

    def templates(self, ref: int | str) -> list[TemplateInfo]:
        return self._store.templates(self._store.person(ref).id)

    def kept_photo_ids(self, ref: int | str) -> set[int]:
        """Ids of the person's photos whose bytes are kept (``keep_photos``)."""
        return self._store.kept_photo_ids(self._store.person(ref).id)

    def photo_bytes(self, photo_id: int) -> bytes | None:
        """A kept photo's bytes (decrypted), or None when photos are not kept."""
        return self._store.photo_bytes(photo_id)

    def names(self, ids: list[int]) -> dict[int, str]:
        return self._store.names(ids)

    def create_person(
        self,
        name: str,
        *,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Person:
        """Create a person with no templates yet (photos come with enrolment)."""
        with self._store.transaction() as conn:
            person_id = self._store.create_person(
                conn, name, external_id=external_id, metadata=metadata
            )
            self._store.audit(
                conn, "create_person", actor=self.current_actor(), person_id=person_id
            )
        return self._store.person(person_id)

    def rename(self, ref: int | str, new_name: str) -> Person:
        return self.update(ref, name=new_name)

    def update(
        self,
        ref: int | str,
        *,
        name: str | None = None,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Person:
        """Change a person's name, external id and/or metadata in one transaction."""
        person = self._store.person(ref)
        if name is None and external_id is None and metadata is None:
            return person
        with self._store.transaction() as conn:
            self._store.update_person(
                conn, person.id, name=name, external_id=external_id, metadata=metadata
            )
            renamed = name is not None and name.strip() != person.name
            self._store.audit(
                conn,
                "rename" if renamed else "update",
                actor=self.current_actor(),
                person_id=person.id,
            )
        return self._store.person(person.id)

    def merge(self, into: int | str, other: int | str) -> Person:
        """Fold ``other`` into ``into``: its templates and photos move to ``into`` and
        ``other`` is deleted, in one transaction with a ``merge`` audit entry.

        ``into`` keeps its name; it takes ``other``'s external id if it had none, and
        ``other``'s metadata keys it lacks. Returns the merged person.
        """
        keep, gone = self._store.person(into), self._store.person(other)
        if keep.id == gone.id:
            raise InvalidInputError(f"cannot merge {keep.name} into themselves")
        with self._store.transaction() as conn:
            if not self._store.person_exists(conn, keep.id):
                raise NotFoundError(f"no person #{keep.id}", person=keep.id)
            templates, photos = self._store.move_person(conn, gone.id, keep.id)
            self._store.delete_person(conn, gone.id)
            metadata = {**gone.metadata, **keep.metadata}
            external_id = gone.external_id if not keep.external_id else None
            self._store.update_person(
                conn,
                keep.id,
                external_id=external_id or None,
                metadata=metadata if metadata != dict(keep.metadata) else None,
            )
            self._store.audit(
                conn,
                "merge",
                actor=self.current_actor(),
                person_id=keep.id,
                details={"from_person_id": gone.id, "templates": templates, "photos": photos},
            )
        self._refresh_index()
        return self._store.person(keep.id)

    def export(self, *, photos: bool = False) -> bytes:
        """The whole gallery as one file (:mod:`~faceindex.gallery.transfer`): people,
        external ids, metadata, templates with their model and flags, and the kept photos
        when ``photos``. Sealed with the gallery's key when it has one. Audited."""
        from faceindex.gallery.transfer import export_gallery

        return export_gallery(self._store, photos=photos, actor=self.current_actor())

    def remove(self, ref: int | str) -> int:
        """Erase a person: every template, photo and index entry. Returns templates removed.

        Whether the erased data has also left the WAL (it cannot while another connection
        reads an old snapshot) is :meth:`pending_erasures`; the next write finishes it.
        """
        person = self._store.person(ref)
        with self._store.transaction() as conn:
            n = self._store.delete_person(conn, person.id)
            self._store.add_pending_erasure(conn, "delete", person_id=person.id)
            self._store.audit(
                conn,
                "delete",
                actor=self.current_actor(),
                person_id=person.id,
                details={"templates": n},
            )
        self._erased()
        return n

    def remove_template(self, template_id: int) -> None:
        with self._store.transaction() as conn:
            person_id = self._store.delete_template(conn, template_id)
            self._store.add_pending_erasure(
                conn, "delete_template", person_id=person_id, template_id=template_id
            )
            self._store.audit(
                conn,
                "delete_template",
                actor=self.current_actor(),
                person_id=person_id,
                details={"template_id": template_id},
            )
        self._erased()

    def pending_erasures(self) -> list[dict[str, Any]]:
        """Erasures committed whose old data may still be in the WAL (a reader held an
        old snapshot); each is finished by the next write, open or close, or by
        :meth:`complete_erasures`. Empty when every erasure is complete."""
        return self._store.pending_erasures()

    def complete_erasures(self) -> bool:
        """Try (without waiting on readers) to finish pending erasures; True when done."""
        return self._store.finish_erasures()

    def check(self) -> CheckReport:
        """Prove that no trace of erased people is left (:mod:`~faceindex.gallery.integrity`)."""
        from faceindex.gallery.integrity import check

        return check(self._store)

    def record(
        self,
        action: str,
        *,
        person_id: int | None = None,
        decision: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one audit entry in its own transaction (e.g. for anonymise)."""
        with self._store.transaction() as conn:
            self._store.audit(
                conn,
                action,
                actor=self.current_actor(),
                person_id=person_id,
                decision=decision,
                details=details,
            )

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return self._store.audit_events(**filters)

    # -- encryption at rest -------------------------------------------------------------

    def key_ids(self) -> set[str | None]:
        """The ids of the keys the stored templates and photos are sealed with (None = clear)."""
        return self._store.key_ids()

    def rekey(self, new_key: TemplateKey | None) -> int:
        """Re-encrypt every template and kept photo with ``new_key`` (None = decrypt)."""
        n = self._store.reseal(Sealer(new_key))
        self.record(
            "keys_rotate",
            details={"templates": n, "key_id": None if new_key is None else new_key.key_id},
        )
        return n

    def _seal_clear(self) -> tuple[int, int]:
        """Seal plaintext templates and kept photos with the store's key (see sealing)."""
        if self._store.sealer.key is None or not self._store.has_clear_blobs():
            return 0, 0
        with self._store.transaction() as conn:
            templates, photos = self._store.seal_clear(conn)
            if templates or photos:
                self._store.audit(
                    conn,
                    "keys_seal",
                    actor=self.current_actor(),
                    details={
                        "templates": templates,
                        "photos": photos,
                        "key_id": self._store.sealer.key_id,
                    },
                )
        return templates, photos
