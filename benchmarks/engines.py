"""``enroll --folders`` throughput by engine: local, dask with 1 worker, dask with N.

Usage: python benchmarks/engines.py DIR [--people 15] [--runs 3] [--workers 1,2]

DIR holds one folder of photos per person (e.g. ../shared/dev-data/lfw57); the first
``--people`` folders are enrolled (through symbolic links in a temporary folder). Each
configuration runs ``faceindex enroll --folders`` in-process ``--runs`` times, each into
a fresh gallery, with the real models:

- ``local``: the pipeline loaded once beforehand (as a long-lived process would have it);
- ``dask N``: a LocalCluster of N worker processes on 127.0.0.1, started and warmed up
  (each worker loads its models) once beforehand and joined with ``--address``, so the
  figures are steady-state throughput; the start-up is reported on its own.

Then the single writer alone: every photo analysed beforehand (local), and only the
writes timed (the duplicate pre-check by hash, the enrolment gate with its cross-person
check, the committed transaction), which is the part no number of workers speeds up.
Printed: photos/s (median of the runs), the engine's overhead per photo (dask with one
worker against local), the writer's time per photo, and the analysis time per photo.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import cpu_count, fmt_table
from faceindex.cli.context import CliContext
from faceindex.cli.main import main as cli_main
from faceindex.config import GallerySettings, Settings
from faceindex.engines import EngineOptions
from faceindex.io.files import person_folders
from faceindex.pipeline import Pipeline


def subset(src: Path, people: int, dst: Path) -> int:
    """``dst/<person>`` linked to the first ``people`` person folders of ``src``; the
    number of photos."""
    dst.mkdir()
    total = 0
    for name, photos in person_folders(src)[:people]:
        (dst / name).symlink_to((src / name).absolute(), target_is_directory=True)
        total += len(photos)
    return total


def enrol_once(tree: Path, gallery: Path, pipeline: Pipeline | None, *extra: str) -> float:
    """One ``enroll --folders`` into a new gallery; its wall time in seconds."""
    settings = dataclasses.replace(Settings(), gallery=GallerySettings(path=str(gallery)))
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        code = cli_main(
            ["enroll", "--folders", str(tree), *extra],
            context_factory=lambda a: CliContext(a, settings=settings, pipeline=pipeline),
        )
    elapsed = time.perf_counter() - start
    if code not in (0, 8):
        raise SystemExit(f"enroll --folders {' '.join(extra)} failed: exit {code}")
    return elapsed


def timed_runs(runs: int, tmp: Path, label: str, once: Callable[[Path], float]) -> list[float]:
    times = []
    for i in range(runs):
        times.append(once(tmp / f"{label}-{i}.db"))
        print(f"  {label} run {i + 1}: {times[-1]:.2f} s", file=sys.stderr)
    return times


def writer_only(tree: Path, gallery_path: Path, pipeline: Pipeline) -> tuple[float, float, int]:
    """(analysis s/photo, writer s/photo, photos): analyses made first, writes timed."""
    from faceindex.engines.analysis import analyse_photo
    from faceindex.gallery import open_gallery
    from faceindex.gallery.enrolment import ENROLMENT_PLAN

    items = [(name, p) for name, photos in person_folders(tree) for p in photos]
    start = time.perf_counter()
    analyses = [
        analyse_photo(pipeline, str(p), label=str(p), plan=ENROLMENT_PLAN) for _, p in items
    ]
    analysis_s = (time.perf_counter() - start) / len(items)
    with open_gallery(gallery_path, pipeline=pipeline) as gallery:
        start = time.perf_counter()
        for (name, photo), analysis in zip(items, analyses, strict=True):
            if gallery.known_photo(name, photo, str(photo)) is None:
                gallery.enroll(name, [photo], sources=[str(photo)], analyses=[analysis])
        writer_s = (time.perf_counter() - start) / len(items)
    return analysis_s, writer_s, len(items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--people", type=int, default=15, help="person folders to enrol (15)")
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (3)")
    ap.add_argument("--workers", default="1,2", help="dask worker counts to try (1,2)")
    args = ap.parse_args(argv)
    from faceindex.engines.dask_engine import DaskEngine

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tree = tmp / "people"
        total = subset(args.dir, args.people, tree)
        print(f"{total} photos of {args.people} people, {cpu_count()} CPU cores, {args.runs} runs")
        pipeline = Pipeline.from_settings()
        pipeline.warm_up()
        rows: dict[str, float] = {}
        rows["local"] = statistics.median(
            timed_runs(args.runs, tmp, "local", lambda g: enrol_once(tree, g, pipeline))
        )
        startups: dict[int, float] = {}
        for n in (int(w) for w in args.workers.split(",")):
            start = time.perf_counter()
            with DaskEngine(settings=Settings(), options=EngineOptions(workers=n)) as engine:
                address = engine.scheduler_address
                engine.warm_up()  # every worker loads its models
                startups[n] = time.perf_counter() - start
                extra = ("--engine", "dask", "--address", address)
                rows[f"dask {n}"] = statistics.median(
                    timed_runs(
                        args.runs,
                        tmp,
                        f"dask{n}",
                        lambda g, extra=extra: enrol_once(tree, g, None, *extra),
                    )
                )
        analysis_s, writer_s, n_photos = writer_only(tree, tmp / "writer.db", pipeline)

    table = [["engine", "median s", "photos/s", "ms/photo", "vs local"]]
    for label, seconds in rows.items():
        table.append(
            [
                label,
                f"{seconds:.2f}",
                f"{total / seconds:.1f}",
                f"{1000 * seconds / total:.1f}",
                f"{rows['local'] / seconds:.2f}x",
            ]
        )
    print(fmt_table(table))
    for n, s in startups.items():
        print(f"dask {n}: cluster start + models loaded on the workers: {s:.1f} s (once)")
    if "dask 1" in rows:
        overhead = 1000 * (rows["dask 1"] - rows["local"]) / total
        print(f"engine overhead per photo (dask 1 worker - local): {overhead:+.1f} ms")
    print(
        f"analysis alone: {1000 * analysis_s:.1f} ms/photo; single writer alone "
        f"(pre-check + gate + commit): {1000 * writer_s:.2f} ms/photo "
        f"(ceiling {1 / writer_s:.0f} photos/s) over {n_photos} photos"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
