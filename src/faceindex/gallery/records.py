"""People records and the audit trail: create, list, rename, erase; who did it, when.

No models here: this part of the gallery works without a pipeline, so listing or erasing
people never loads one. Every write is one transaction together with its audit entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from faceindex.gallery.store import Person, SqliteStore, TemplateInfo

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
        """Erase a person: every template, photo and index entry. Returns templates removed."""
        person = self.store.person(ref)
        with self.store.transaction() as conn:
            n = self.store.delete_person(conn, person.id)
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
            self.store.audit(
                conn,
                "delete_template",
                actor=self.current_actor(),
                person_id=person_id,
                details={"template_id": template_id},
            )
        self._erased()

    def _erased(self) -> None:
        self.store.checkpoint()  # fold the WAL so no erased vector lingers in it
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
