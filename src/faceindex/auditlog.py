"""The audit log table: who did what, when, with what decision (ids, never names or vectors).

A base module so that every writer of the database (the gallery, the API key ring) appends
its entries inside its own write transaction: an action and its audit entry commit
together or not at all. The SQL suits SQLite and PostgreSQL alike (:mod:`faceindex.pg`).
The table itself is created by the gallery's first migration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faceindex.db import now

if TYPE_CHECKING:  # a sqlite3 connection or faceindex.pg's adapter: the SQL suits both
    from faceindex.pg import Connection


def append(
    conn: Connection,
    action: str,
    *,
    actor: str,
    person_id: int | None = None,
    decision: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Add one entry on ``conn``, which must be inside a write transaction."""
    conn.execute(
        "INSERT INTO audit (at, actor, action, person_id, decision, details)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (now(), actor, action, person_id, decision, json.dumps(dict(details or {}))),
    )


def query(
    conn: Connection,
    *,
    action: str | None = None,
    person_id: int | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries matching every filter given, newest first."""
    where, params = [], []
    for clause, value in (
        ("action = ?", action),
        ("person_id = ?", person_id),
        ("at >= ?", since),
        ("at < ?", until),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = "SELECT * FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = conn.execute(sql, (*params, limit)).fetchall()
    return [
        {
            "id": int(r["id"]),
            "at": r["at"],
            "actor": r["actor"],
            "action": r["action"],
            "person_id": r["person_id"],
            "decision": r["decision"],
            "details": json.loads(r["details"]),
        }
        for r in rows
    ]
