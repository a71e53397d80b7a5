"""Bulk enrolment throughput: photos per second into a fresh gallery.

Usage: python benchmarks/enrolment.py DIR [--keep-photos] [--key]

DIR holds one folder of photos per person (e.g. ../shared/dev-data/glint6). Every photo
goes through the full enrolment path: hash + duplicate check, decode, detect, quality gate,
embed, cross-person check against the gallery so far, and one committed transaction. A
second pass over the same tree measures the resume path (every photo a duplicate).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

from _common import peak_rss_mb
from faceindex.crypto import TemplateKey
from faceindex.gallery import open_gallery
from faceindex.io.files import person_folders
from faceindex.pipeline import Pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--keep-photos", action="store_true")
    ap.add_argument("--key", action="store_true", help="encrypt templates (AES-GCM)")
    args = ap.parse_args(argv)

    people = dict(person_folders(args.dir))
    total = sum(len(v) for v in people.values())
    if not total:
        print(f"no person folders with photos in {args.dir}", file=sys.stderr)
        return 2
    pipeline = Pipeline.from_settings()
    t = time.perf_counter()
    pipeline.warm_up()
    print(
        f"{total} photos of {len(people)} people; models loaded in {time.perf_counter() - t:.2f} s"
    )
    key = TemplateKey.generate() if args.key else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_gallery(
            Path(tmp) / "g.db", pipeline=pipeline, key=key, keep_photos=args.keep_photos
        ) as gallery,
    ):
        for label in ("first pass", "re-run (resume)"):
            counts: collections.Counter[str] = collections.Counter()
            start = time.perf_counter()
            for name, photos in people.items():
                for photo in photos:
                    report = gallery.enroll(name, [photo], sources=[str(photo)])
                    counts[str(report.outcomes[0].status)] += 1
            elapsed = time.perf_counter() - start
            print(f"{label}: {total / elapsed:.1f} photos/s ({elapsed:.1f} s) {dict(counts)}")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
