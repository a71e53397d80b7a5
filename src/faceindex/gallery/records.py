"""People records and the audit trail: create, list, rename, erase; who did it, when.

No models here: this part of the gallery works without a pipeline, so listing or erasing
people never loads one. Every write is one transaction together with its audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from faceindex.calibration import Calibration
from faceindex.crypto import TemplateKey
from faceindex.gallery.sealing import Sealer
from faceindex.gallery.store import Person, SqliteStore, TemplateInfo

if TYPE_CHECKING:
    from faceindex.gallery.integrity import CheckReport

#: Who is acting, for the audit log, when a front end serves several callers through one
#: gallery (the REST API sets it per request); falls back to the gallery's ``actor``.
_ACTOR: ContextVar[str | None] = ContextVar("faceindex_gallery_actor", default=None)


def set_actor(actor: str | None) -> None:
    """Name the caller for audit entries made in the current context (request, task)."""
    _ACTOR.set(actor)


class People:
    """The people of one gallery and its audit log."""

    def __init__(
        self,
        store: SqliteStore,
        *,
        actor: str = "local",
        on_erase: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.actor = actor
        #: Called after templates are erased, so that a built index drops them at once.
        self._on_erase = on_erase

    def current_actor(self) -> str:
        """The caller named by :func:`set_actor` in this context, else the gallery's actor."""
        return _ACTOR.get() or self.actor

    # -- reads --------------------------------------------------------------------------

    def find(self, *, search: str | None = None, offset: int = 0, limit: int = 100) -> list[Person]:
        return self.store.persons(search=search, offset=offset, limit=limit)

    def get(self, ref: int | str) -> Person:
        return self.store.person(ref)

    def count(self, *, search: str | None = None) -> int:
        return self.store.count_persons(search=search)

    def templates(self, ref: int | str) -> list[TemplateInfo]:
        return self.store.templates(self.store.person(ref).id)

    def names(self, ids: list[int]) -> dict[int, str]:
        return self.store.names(ids)

    # -- writes -------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Person:
        """Create a person with no templates yet (photos come with enrolment)."""
        with self.store.transaction() as conn:
            person_id = self.store.create_person(
                conn, name, external_id=external_id, metadata=metadata
            )
            self.store.audit(conn, "create_person", actor=self.current_actor(), person_id=person_id)
        return self.store.person(person_id)

    def update(
        self,
        ref: int | str,
        *,
        name: str | None = None,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Person:
        """Change a person's name, external id and/or metadata in one transaction."""
        person = self.store.person(ref)
        if name is None and external_id is None and metadata is None:
            return person
        with self.store.transaction() as conn:
            self.store.update_person(
                conn, person.id, name=name, external_id=external_id, metadata=metadata
            )
            renamed = name is not None and name.strip() != person.name
            self.store.audit(
                conn,
                "rename" if renamed else "update",
                actor=self.current_actor(),
                person_id=person.id,
            )
        return self.store.person(person.id)

    def remove(self, ref: int | str) -> int:
        """Erase a person: every template, photo and index entry. Returns templates removed.

        Whether the erased data has also left the WAL (it cannot while another connection
        reads an old snapshot) is :meth:`pending_erasures`; the next write finishes it.
        """
        person = self.store.person(ref)
        with self.store.transaction() as conn:
            n = self.store.delete_person(conn, person.id)
            self.store.add_pending_erasure(conn, "delete", person_id=person.id)
            self.store.audit(
                conn,
                "delete",
                actor=self.current_actor(),
                person_id=person.id,
                details={"templates": n},
            )
        self._erased()
        return n

    def remove_template(self, template_id: int) -> None:
        with self.store.transaction() as conn:
            person_id = self.store.delete_template(conn, template_id)
            self.store.add_pending_erasure(
                conn, "delete_template", person_id=person_id, template_id=template_id
            )
            self.store.audit(
                conn,
                "delete_template",
                actor=self.current_actor(),
                person_id=person_id,
                details={"template_id": template_id},
            )
        self._erased()

    def seal_clear(self) -> tuple[int, int]:
        """Seal plaintext templates and kept photos with the store's key (see sealing)."""
        if self.store.sealer.key is None or not self.store.has_clear_blobs():
            return 0, 0
        with self.store.transaction() as conn:
            templates, photos = self.store.seal_clear(conn)
            if templates or photos:
                self.store.audit(
                    conn,
                    "keys_seal",
                    actor=self.current_actor(),
                    details={
                        "templates": templates,
                        "photos": photos,
                        "key_id": self.store.sealer.key_id,
                    },
                )
        return templates, photos

    def _erased(self) -> None:
        self.store.finish_erasures()  # truncate the WAL so no erased vector lingers in it
        if self._on_erase is not None:
            self._on_erase()

    # -- audit --------------------------------------------------------------------------

    def record(
        self,
        action: str,
        *,
        person_id: int | None = None,
        decision: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one audit entry in its own transaction (actions done outside the gallery)."""
        with self.store.transaction() as conn:
            self.store.audit(
                conn,
                action,
                actor=self.current_actor(),
                person_id=person_id,
                decision=decision,
                details=details,
            )

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return self.store.audit_events(**filters)


#: The meta key under which a user's own calibration is stored.
CALIBRATION_KEY = "calibration"


class GalleryRecords:
    """A gallery's people, audit log, calibration and keys: everything that needs no model.

    :class:`~faceindex.gallery.gallery.Gallery` extends it with enrolment and search.
    """

    def __init__(self, store: SqliteStore, *, actor: str = "local") -> None:
        self._store = store
        self.records = People(store, actor=actor, on_erase=self._refresh_index)
        try:  # a gallery opened with a key keeps nothing in the clear (see sealing)
            self.records.seal_clear()
        except BaseException:
            store.close()
            raise

    def _refresh_index(self) -> None:
        """Called after templates are erased (a gallery with an index drops them)."""

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what it is ---------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def model_id(self) -> str | None:
        """The embedding model of the gallery's templates (None while it has none)."""
        return self._store.model_id

    @property
    def actor(self) -> str:
        return self.records.actor

    def current_actor(self) -> str:
        return self.records.current_actor()

    def calibration(self) -> Calibration | None:
        """The calibration stored with ``set_calibration`` (any model), if any."""
        raw = self._store.meta(CALIBRATION_KEY)
        return None if raw is None else Calibration.from_dict(json.loads(raw))

    # -- people and audit ---------------------------------------------------------------

    def people(
        self, *, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[Person]:
        return self.records.find(search=search, offset=offset, limit=limit)

    def person(self, ref: int | str) -> Person:
        return self.records.get(ref)

    def count_people(self, search: str | None = None) -> int:
        return self.records.count(search=search)

    def count_templates(self) -> int:
        return self._store.count_templates()

    def templates(self, ref: int | str) -> list[TemplateInfo]:
        return self.records.templates(ref)

    def kept_photo_ids(self, ref: int | str) -> set[int]:
        """Ids of the person's photos whose bytes are kept (``keep_photos``)."""
        return self._store.kept_photo_ids(self._store.person(ref).id)

    def photo_bytes(self, photo_id: int) -> bytes | None:
        """A kept photo's bytes (decrypted), or None when photos are not kept."""
        return self._store.photo_bytes(photo_id)

    def names(self, ids: list[int]) -> dict[int, str]:
        return self.records.names(ids)

    def create_person(
        self,
        name: str,
        *,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Person:
        """Create a person with no templates yet (photos come with :meth:`enroll_person`)."""
        return self.records.create(name, external_id=external_id, metadata=metadata)

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
        return self.records.update(ref, name=name, external_id=external_id, metadata=metadata)

    def remove(self, ref: int | str) -> int:
        """Erase a person: every template, photo and index entry. Returns templates removed."""
        return self.records.remove(ref)

    def remove_template(self, template_id: int) -> None:
        self.records.remove_template(template_id)

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
        """Write one audit entry for an action done outside the gallery (e.g. anonymise)."""
        self.records.record(action, person_id=person_id, decision=decision, details=details)

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return self.records.audit(**filters)

    # -- encryption at rest -------------------------------------------------------------

    def key_ids(self) -> set[str | None]:
        """The ids of the keys the stored templates and photos are sealed with (None = clear)."""
        return self._store.key_ids()

    def rekey(self, new_key: TemplateKey | None) -> int:
        """Re-encrypt every template and kept photo with ``new_key`` (None = decrypt)."""
        n = self._store.reseal(Sealer(new_key))
        self.records.record(
            "keys_rotate",
            details={"templates": n, "key_id": None if new_key is None else new_key.key_id},
        )
        return n
