"""Proof that erased people left no trace: ``Gallery.check()`` and ``faceindex check``.

What is checked, after trying to finish pending erasures (never waiting on readers):

- ``PRAGMA integrity_check`` answers ``ok``;
- the -wal file is absent or empty (a non-empty one may still hold erased rows' old
  pages), and no erasure is pending;
- for every person the audit log records as deleted, no person, photo or template row
  made before that deletion refers to the id (and likewise for deleted templates);
- in an encrypted gallery (opened with a key, or holding anything sealed), nothing is
  stored in the clear: no template, no kept photo, and no photo's SHA-256 or source name
  (those would say which photos were enrolled, and often whose: see
  :mod:`faceindex.gallery.sealing`);
- every free page of the database file is zero-filled (``secure_delete``), read from the
  raw file: the erased vectors cannot be known after erasure, but whatever held them is
  either a live page rewritten without them or a free page, which must be all zeros
  (a freelist trunk page holds only page numbers: SQLite leaves stale ones past its
  count, so there each 4-byte word must be zero or a page number of the file).

On a PostgreSQL gallery (:mod:`~faceindex.gallery.pg_store`) the file checks have no
counterpart (the server owns its files and WAL); instead: pending erasures (VACUUM not yet
run because an older transaction was open), rows of deleted people, plaintext in a keyed
gallery including the search-vector column (:meth:`PgStore.integrity`), and whether
VACUUM could run on the tables that hold people's data since the last deletion (it
cannot while another session keeps a transaction open from before it). The statistics'
dead-tuple counts are not used: a backend flushes its counts up to a second late, after
a VACUUM that already removed the rows.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceindex.db import wal_path
from faceindex.gallery.store import GalleryStore, SqliteStore


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What :func:`check` found; ``clean`` when ``issues`` is empty."""

    path: Path | str
    integrity: str
    wal_bytes: int
    pending_erasures: list[dict[str, Any]]
    deleted_people: int
    free_pages: int
    dirty_free_pages: list[int]
    issues: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.issues

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "clean": self.clean,
            "integrity": self.integrity,
            "wal_bytes": self.wal_bytes,
            "pending_erasures": self.pending_erasures,
            "deleted_people": self.deleted_people,
            "free_pages": self.free_pages,
            "dirty_free_pages": self.dirty_free_pages,
            "issues": list(self.issues),
        }


def check(store: GalleryStore) -> CheckReport:
    """Check ``store`` for traces of erased people (see the module docstring)."""
    if not isinstance(store, SqliteStore):
        return _check_database(store)
    store.finish_erasures()
    store.checkpoint()  # fold whatever else the WAL holds, if no reader stops it
    issues: list[str] = []
    integrity = store.integrity()
    if integrity != "ok":
        issues.append(f"integrity check failed: {integrity}")
    pending = store.pending_erasures()
    if pending:
        issues.append(
            f"{len(pending)} erasure(s) pending: a reader holds an old snapshot, so the WAL "
            "cannot be truncated yet (it is retried at the next write, open or close)"
        )
    wal = _size(wal_path(store.path))
    if wal:
        issues.append(f"the WAL file holds {wal} bytes not yet truncated")
    deleted = _deleted_rows_left(store, issues)
    _plaintext_left(store, issues)
    free, dirty = _free_pages(store.path)
    if dirty:
        issues.append(f"{len(dirty)} free page(s) hold non-zero data: {dirty[:10]}")
    return CheckReport(
        path=store.path,
        integrity=integrity,
        wal_bytes=wal,
        pending_erasures=pending,
        deleted_people=deleted,
        free_pages=free,
        dirty_free_pages=dirty,
        issues=issues,
    )


def _check_database(store: GalleryStore) -> CheckReport:
    """The checks that apply to a database server's gallery (PostgreSQL)."""
    from faceindex.gallery.pg_store import PgStore

    store.finish_erasures()
    issues: list[str] = []
    integrity = store.integrity()
    if integrity != "ok":
        issues.append(f"integrity check failed: {integrity}")
    pending = store.pending_erasures()
    if pending:
        issues.append(
            f"{len(pending)} erasure(s) pending: another session holds a transaction older "
            "than the erasure, so VACUUM cannot remove the deleted rows yet (retried at the "
            "next write, open or close)"
        )
    deleted = _deleted_rows_left(store, issues)
    _plaintext_left(store, issues)
    if isinstance(store, PgStore) and not pending:
        last = store.read("SELECT MAX(at) FROM audit WHERE action IN ('delete', 'delete_template')")
        since = last[0][0] if last and last[0][0] is not None else None
        if not store.vacuum(since=since):
            issues.append(
                "VACUUM could not run: another session holds a transaction open since before "
                "the last erasure, so its dead rows may still be on disk (run check again later)"
            )
    return CheckReport(
        path=store.where,
        integrity=integrity,
        wal_bytes=0,
        pending_erasures=pending,
        deleted_people=deleted,
        free_pages=0,
        dirty_free_pages=[],
        issues=issues,
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _deleted_rows_left(store: GalleryStore, issues: list[str]) -> int:
    """Check rows made before a deletion that still name the deleted id; returns people."""
    rows = store.read(
        "SELECT action, person_id, at, details FROM audit"
        " WHERE action IN ('delete', 'delete_template')"
    )
    people = 0
    for row in rows:
        at = str(row["at"])
        if row["action"] == "delete" and row["person_id"] is not None:
            people += 1
            pid = int(row["person_id"])
            for table, column in (("persons", "id"), ("photos", "person_id"),
                                  ("templates", "person_id")):  # fmt: skip
                left = store.read(
                    f"SELECT COUNT(*) FROM {table} WHERE {column} = ? AND created_at <= ?",
                    (pid, at),
                )[0][0]
                if left:
                    issues.append(f"{left} row(s) of {table} still refer to deleted person #{pid}")
        elif row["action"] == "delete_template":
            try:
                tid = int(json.loads(row["details"]).get("template_id"))
            except (TypeError, ValueError, AttributeError):
                continue
            left = store.read(
                "SELECT COUNT(*) FROM templates WHERE id = ? AND created_at <= ?", (tid, at)
            )[0][0]
            if left:
                issues.append(f"deleted template #{tid} is still stored")
    return people


def _plaintext_left(store: GalleryStore, issues: list[str]) -> None:
    """In an encrypted gallery, report what is still stored in the clear."""
    if store.sealer.key is None and store.key_ids() <= {None}:
        return  # no key anywhere: plaintext is what the user chose
    (templates, photos, labels, sources), *_ = store.read(
        "SELECT (SELECT COUNT(*) FROM templates WHERE key_id IS NULL),"
        " (SELECT COUNT(*) FROM photos WHERE data IS NOT NULL AND data_key_id IS NULL),"
        " (SELECT COUNT(*) FROM photos WHERE label_key_id IS NULL),"
        " (SELECT COUNT(*) FROM photos WHERE label_key_id IS NOT NULL AND source IS NOT NULL)"
    )
    fix = "open the gallery with its key to seal them"
    if templates or photos:
        issues.append(
            f"{templates} template(s) and {photos} kept photo(s) are stored in the clear in "
            f"an encrypted gallery: {fix}"
        )
    if labels:
        issues.append(
            f"{labels} photo hash(es) and source name(s) are stored in the clear in an "
            f"encrypted gallery: {fix}"
        )
    if sources:
        issues.append(
            f"{sources} photo(s) with a sealed label also hold a plain source name: "
            f"it should be empty ({fix.replace('seal', 'clear')})"
        )


_U32 = struct.Struct(">I")


def _free_pages(path: Path) -> tuple[int, list[int]]:
    """The number of free pages in the database file and those holding non-zero bytes."""
    with path.open("rb") as f:
        header = f.read(100)
        if len(header) < 100:
            return 0, []
        page_size = struct.unpack(">H", header[16:18])[0]
        page_size = 65536 if page_size == 1 else page_size
        trunk = _U32.unpack(header[32:36])[0]
        total = _U32.unpack(header[36:40])[0]
        pages = max(_U32.unpack(header[28:32])[0], path.stat().st_size // page_size)

        def page(number: int) -> bytes:
            f.seek((number - 1) * page_size)
            return f.read(page_size)

        dirty: list[int] = []
        seen = 0
        visited: set[int] = set()
        while trunk and trunk not in visited and seen <= total:
            visited.add(trunk)
            data = page(trunk)
            nxt, leaves = _U32.unpack(data[0:4])[0], _U32.unpack(data[4:8])[0]
            leaves = min(leaves, (page_size - 8) // 4)
            words = struct.unpack(f">{len(data) // 4}I", data[: len(data) // 4 * 4])
            if any(w > pages for w in words[2 + leaves :]) or any(data[len(words) * 4 :]):
                dirty.append(trunk)
            seen += 1
            for i in range(leaves):
                leaf = _U32.unpack(data[8 + 4 * i : 12 + 4 * i])[0]
                if any(page(leaf)):
                    dirty.append(leaf)
                seen += 1
            trunk = nxt
    return total, dirty
