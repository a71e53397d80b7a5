"""A PostgreSQL gallery against a real server (tests/pg_server.py): sharing, concurrency,
sealing, erasure, migrations, errors. The gallery logic itself runs on both stores in
tests/unit/gallery (the ``gallery_location`` fixture)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from faceindex.apikeys import KeyRing
from faceindex.crypto import TemplateKey
from faceindex.errors import ConfigError, FaceIndexError, StorageError
from faceindex.gallery import EnrolStatus, open_gallery
from faceindex.gallery.pg_store import PgStore
from faceindex.pipeline import Pipeline
from pg_server import SECRET_PASSWORD, SECRET_ROLE, PgServer

PhotoOf = Callable[..., Path]


def _sql(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query.encode())
        return list(cur.fetchall()) if cur.description is not None else []


def test_two_galleries_on_one_database_see_each_others_writes(
    pg_url: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    # Two connections, as two `faceindex serve` processes would have; the in-database index
    # (pgvector) and the in-process one (exact, replaying the template log) both follow.
    for backend in ("pgvector", "exact"):
        with (
            open_gallery(pg_url, pipeline=fake_pipeline, index_backend=backend) as a,
            open_gallery(pg_url, pipeline=fake_pipeline, index_backend=backend) as b,
        ):
            a.enroll(f"Ada {backend}", [photo_of(1)])
            (face,) = b.identify(photo_of(1, variant=1))
            assert face.person is not None and face.person.name == f"Ada {backend}"
            b.enroll(f"Bob {backend}", [photo_of(2)])
            (bob,) = a.identify(photo_of(2, variant=1))
            assert bob.person is not None and bob.person.name == f"Bob {backend}"
            b.remove(f"Bob {backend}")
            (gone,) = a.identify(photo_of(2, variant=1))
            assert gone.person is None
            a.remove(f"Ada {backend}")
            assert b.count_people() == 0


def test_concurrent_enrolments_lose_and_duplicate_nothing(
    pg_url: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    """2 writers x 20 people on their own connections, racing: each enrols its own photo of
    every person (the person is created once, by whichever comes first) and both enrol
    one shared photo of each (kept once: the loser is told it is a duplicate)."""
    errors: list[BaseException] = []
    refused: list[int] = []
    # Every file is written before the race: two threads writing one photo file while the
    # other reads it would test the file system, not the gallery.
    own = {(k, i): photo_of(i + 1, variant=k) for k in (0, 1) for i in range(20)}
    shared = [photo_of(i + 1, variant=5) for i in range(20)]

    def writer(k: int) -> None:
        try:
            with open_gallery(pg_url, pipeline=fake_pipeline) as g:
                for i in range(20):
                    g.enroll(f"P{i}", [own[k, i]], force=True)
                    try:
                        (o,) = g.enroll(f"P{i}", [shared[i]], force=True).outcomes
                        assert o.status in (EnrolStatus.ACCEPTED, EnrolStatus.DUPLICATE), o
                        refused.extend([1] if o.status is EnrolStatus.DUPLICATE else [])
                    except FaceIndexError as exc:  # the race lost at the unique constraint
                        assert exc.code == "conflict", exc
                        refused.append(1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(refused) == 20
    with open_gallery(pg_url, pipeline=fake_pipeline) as g:
        people = g.people(limit=100)
        assert sorted(p.name for p in people) == sorted(f"P{i}" for i in range(20))
        assert all(p.photos == 3 and p.templates == 3 for p in people), people
        assert g.count_templates() == 60
    ((logged,),) = _sql(pg_url, "SELECT COUNT(*) FROM template_log WHERE op = 'add'")
    assert logged == 60


def test_a_sealed_gallery_keeps_no_plaintext_vector_in_the_database(
    pg_url: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    with open_gallery(pg_url, pipeline=fake_pipeline) as g:  # plaintext first
        g.enroll("Ada", [photo_of(1)])
    ((plain,),) = _sql(pg_url, "SELECT COUNT(*) FROM templates WHERE embedding IS NOT NULL")
    assert plain == 1
    key = TemplateKey.generate()
    with open_gallery(pg_url, pipeline=fake_pipeline, key=key) as g:  # sealed at open
        g.enroll("Bob", [photo_of(2)])
        (face,) = g.identify(photo_of(2, variant=1))  # searched in the process
        assert face.person is not None and face.person.name == "Bob"
        assert g.check().clean, g.check().issues
    rows = _sql(pg_url, "SELECT key_id, embedding IS NULL FROM templates")
    assert rows == [(key.key_id, True), (key.key_id, True)]
    _sql(pg_url, "UPDATE templates SET embedding = '[1,2,3]'")  # a trigger clears it again
    assert _sql(pg_url, "SELECT COUNT(*) FROM templates WHERE embedding IS NOT NULL") == [(0,)]
    with open_gallery(pg_url, pipeline=fake_pipeline, key=key) as g:
        g.rekey(None)  # decrypted: searchable by the database again
        (face,) = g.identify(photo_of(1, variant=1))
        assert face.person is not None and face.person.name == "Ada"
    ((plain,),) = _sql(pg_url, "SELECT COUNT(*) FROM templates WHERE embedding IS NOT NULL")
    assert plain == 2


def test_erasure_removes_the_rows_vacuums_and_checks_clean(
    pg_url: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    with open_gallery(pg_url, pipeline=fake_pipeline) as g:
        g.enroll("Ada", [photo_of(1)])
        g.enroll("Bob", [photo_of(2)])
        ada = g.person("Ada").id
        # a reader in another session holds an old snapshot: VACUUM must wait for it
        with psycopg.connect(pg_url, autocommit=True) as reader:
            reader.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ")
            reader.execute(b"SELECT COUNT(*) FROM templates").fetchone()
            g.remove("Ada")
            assert [e["person_id"] for e in g.pending_erasures()] == [ada]
            assert not g.check().clean
            reader.execute(b"COMMIT")
        assert g.complete_erasures() and g.pending_erasures() == []
        report = g.check()
        assert report.clean, report.issues
        assert report.deleted_people == 1 and "***" not in str(report.path)
    for table, column in (("persons", "id"), ("photos", "person_id"), ("templates", "person_id")):
        assert _sql(pg_url, f"SELECT COUNT(*) FROM {table} WHERE {column} = {ada}") == [(0,)]


def test_migration_is_idempotent_and_concurrent_openers_migrate_once(pg_url: str) -> None:
    stores: list[PgStore] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            stores.append(PgStore(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(stores) == 3
    for s in stores:
        s.close()
    with PgStore(pg_url) as again:  # reopening changes nothing
        assert again.count_templates() == 0
    assert _sql(pg_url, "SELECT component, version FROM schema_versions") == [("gallery", 1)]


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    PgStore(pg_url).close()
    _sql(pg_url, "UPDATE schema_versions SET version = 99 WHERE component = 'gallery'")
    with pytest.raises(StorageError, match="newer than this faceindex"):
        PgStore(pg_url)


def test_an_unreachable_server_is_a_storage_error(pg_server: PgServer) -> None:
    with pytest.raises(StorageError, match="cannot connect"):
        open_gallery("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="cannot connect"):
        open_gallery(pg_server.url("no_such_database"))


def test_the_password_is_never_in_an_error(pg_server: PgServer, pg_url: str) -> None:
    database = pg_url.rsplit("/", 1)[1]
    wrong = pg_server.url(database, user=SECRET_ROLE, password=SECRET_PASSWORD + "x")
    with pytest.raises(StorageError) as caught:
        open_gallery(wrong)
    assert SECRET_PASSWORD not in str(caught.value) and "***" in str(caught.value)
    right = pg_server.url(database, user=SECRET_ROLE, password=SECRET_PASSWORD)
    pg_server.admin(f"GRANT ALL ON SCHEMA public TO {SECRET_ROLE}", database)
    with open_gallery(right) as g:
        assert SECRET_PASSWORD not in g.where and g.where.endswith(database)
        with pytest.raises(ConfigError) as no_file:
            _ = g.path  # the photo library needs a file
        assert SECRET_PASSWORD not in str(no_file.value)


def test_the_api_keys_live_in_the_database(pg_url: str) -> None:
    with pytest.raises(StorageError, match="not a faceindex gallery"):
        KeyRing(pg_url)
    with open_gallery(pg_url) as g, KeyRing(g.location) as ring:
        key, secret = ring.create("ops", "read,write")
        assert ring.authenticate(secret) == key
        ring.revoke(key.id)
        assert ring.authenticate(secret) is None
        assert [e["action"] for e in g.audit()] == ["api_key_revoke", "api_key_create"]


def test_enrolment_statuses_are_the_same_as_on_sqlite(
    pg_url: str, tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    def statuses(location: str) -> list[tuple[EnrolStatus, tuple[str, ...]]]:
        with open_gallery(location, pipeline=fake_pipeline) as g:
            out = [(o.status, o.reasons) for o in g.enroll("Ada", [photo_of(1)]).outcomes]
            for images in ([photo_of(1)], [photo_of(1, 2)], [photo_of()], [photo_of(1, variant=1)]):
                out += [(o.status, o.reasons) for o in g.enroll("Bob", images).outcomes]
            return out

    assert statuses(pg_url) == statuses(str(tmp_path / "g.db"))


def test_errors_are_typed(pg_url: str) -> None:
    with pytest.raises(FaceIndexError):
        open_gallery("postgresql://[bad")


def test_a_new_model_drops_the_old_models_hnsw_index(pg_url: str) -> None:
    import numpy as np

    from faceindex.types import Embedding

    def add(store: PgStore, conn: object, pid: int, dim: int, model: str) -> None:
        vec = np.arange(1, dim + 1, dtype=np.float32)
        store.add_template(conn, pid, Embedding(vec, model), photo_id=None, quality=None, bbox=None)  # type: ignore[arg-type]

    with PgStore(pg_url) as store:
        with store.transaction() as conn:
            pid = store.create_person(conn, "Ada")
            add(store, conn, pid, 4, "m4")
        assert store.ensure_hnsw(4) and store.has_hnsw(4)
        with store.transaction() as conn:  # what re-embedding does
            store.delete_all_templates(conn)
            store.unbind_model(conn)
            add(store, conn, pid, 6, "m6")
        assert not store.has_hnsw(4) and store.model_id == "m6"


def test_two_api_servers_on_one_database(
    pg_url: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    """Two REST apps (as two `faceindex serve`), each with its own gallery connection:
    what one enrols the other identifies, with API keys from the shared database."""
    import warnings

    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

    from faceindex.api.app import create_app
    from faceindex.api.settings import ApiSettings

    with (
        open_gallery(pg_url, pipeline=fake_pipeline, actor="api") as one,
        open_gallery(pg_url, pipeline=fake_pipeline, actor="api") as two,
    ):
        with KeyRing(one.location) as ring:
            _, secret = ring.create("ops", "read,write,admin")
        headers = {"Authorization": f"Bearer {secret}"}
        settings = ApiSettings(rate_limit_per_minute=0)
        with (
            TestClient(create_app(settings, pipeline=fake_pipeline, gallery=one)) as a,
            TestClient(create_app(settings, pipeline=fake_pipeline, gallery=two)) as b,
        ):
            pid = a.post("/v1/people", json={"name": "Ada"}, headers=headers).json()["id"]
            photo = photo_of(1)
            files = [("image", (photo.name, photo.read_bytes(), "image/png"))]
            r = a.post(f"/v1/people/{pid}/faces", files=files, headers=headers)
            assert r.status_code == 200, r.text
            probe = photo_of(1, variant=1)
            files = [("image", (probe.name, probe.read_bytes(), "image/png"))]
            r = b.post("/v1/identify", files=files, headers=headers)
            assert r.status_code == 200, r.text
            assert "Ada" in r.text
            assert b.get("/v1/people", headers=headers).json()["total"] == 1


def test_a_dropped_connection_is_opened_again(
    pg_url: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    """A database restart or an idle timeout must not break a long-running server."""
    kill = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'faceindex'"
    )
    with open_gallery(pg_url, pipeline=fake_pipeline) as g:
        g.enroll("Ada", [photo_of(1)])
        assert _sql(pg_url, kill)
        assert [p.name for p in g.people()] == ["Ada"]  # a read
        _sql(pg_url, kill)
        g.enroll("Bob", [photo_of(2)])  # a write transaction
        _sql(pg_url, kill)
        (face,) = g.identify(photo_of(2, variant=1))  # a search in the database
        assert face.person is not None and face.person.name == "Bob"
