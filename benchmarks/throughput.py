"""End-to-end photos per second: faceindex vs face_recognition on the same full-size photos.

Usage: python benchmarks/throughput.py DIR [--repeats 3] [--threads N]

Each system runs in its own process (so peak memory is its own) over every photo in DIR:
decode + detect + embed every face. Printed per system: photos/s (median of the repeats),
faces found, photos with no face, peak RSS. Also measured: a cold ``faceindex verify A B``
(a new process, models loaded from scratch, the dlib graph cache already built).
faceindex's settings come from the ``FACEINDEX_*`` environment variables, with the
detector and embedder of the options (``FACEINDEX_EMBEDDING__LANDMARK_REFINEMENT=false``
measures the pipeline without landmark refinement).

The peer is face_recognition 1.3 as its README uses it: ``load_image_file``,
``face_locations`` (HOG, upsample 1), ``face_encodings`` on those locations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import fmt_table, image_files, peak_rss_mb

HERE = Path(__file__).resolve().parent


def run_faceindex(
    files: list[Path], repeats: int, embedder: str, detector: str, dlib_backend: str
) -> dict[str, object]:
    from dataclasses import replace

    from faceindex.config import Settings
    from faceindex.embedding import EMBEDDERS
    from faceindex.pipeline import Pipeline

    base = Settings.from_env()
    pipeline = Pipeline.from_settings(
        replace(
            base,
            detection=replace(base.detection, detector=detector),
            embedding=replace(base.embedding, embedder=embedder),
        )
    )
    if dlib_backend != "onnx":
        option = "dlib_backend" if embedder == "fusion" else "backend"
        pipeline = Pipeline(
            detector=pipeline.detector,
            embedder=EMBEDDERS.get(embedder)(**{option: dlib_backend}),
        )
    t = time.perf_counter()
    pipeline.warm_up()
    load_s = time.perf_counter() - t
    times, counts = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        counts = [len(pipeline.analyze(f)) for f in files]
        times.append(time.perf_counter() - t)
    return {"load_s": load_s, "times": times, "counts": counts}


def run_peer(files: list[Path], repeats: int) -> dict[str, object]:
    import face_recognition as fr

    t = time.perf_counter()
    fr.face_encodings(fr.load_image_file(str(files[0])))
    load_s = time.perf_counter() - t
    times, counts = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        counts = []
        for f in files:
            image = fr.load_image_file(str(f))
            locations = fr.face_locations(image)
            counts.append(len(fr.face_encodings(image, locations)))
        times.append(time.perf_counter() - t)
    return {"load_s": load_s, "times": times, "counts": counts}


def child(args: argparse.Namespace) -> int:
    files = image_files(args.dir)
    if args.system == "faceindex":
        out = run_faceindex(files, args.repeats, args.embedder, args.detector, args.dlib_backend)
    else:
        out = run_peer(files, args.repeats)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    return 0


def cold_verify(a: Path, b: Path, repeats: int) -> float:
    exe = Path(sys.executable).with_name("faceindex")
    cmd = [str(exe), "verify", str(a), str(b), "--json"]
    subprocess.run(cmd, capture_output=True, check=False)  # builds the dlib cache if missing
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--embedder", default="fusion")
    ap.add_argument("--detector", default="yunet")
    ap.add_argument("--system", choices=["faceindex", "face_recognition"], help=argparse.SUPPRESS)
    ap.add_argument("--dlib-backend", default="onnx", choices=["onnx", "dlib"])
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args(argv)
    if args.system:
        return child(args)

    files = image_files(args.dir)
    if not files:
        print(f"no photos in {args.dir}", file=sys.stderr)
        return 2
    print(
        f"{len(files)} photos in {args.dir}, {len(os.sched_getaffinity(0))} CPUs, "
        f"{args.repeats} repeats"
    )
    systems = ["faceindex"] + ([] if args.no_peer else ["face_recognition"])
    results = {}
    for system in systems:
        cmd = [
            sys.executable,
            str(HERE / "throughput.py"),
            str(args.dir),
            "--system",
            system,
            "--repeats",
            str(args.repeats),
            "--embedder",
            args.embedder,
            "--detector",
            args.detector,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[system] = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = [
        ["system", "photos/s", "median s/pass", "faces", "photos w/o face", "load s", "peak RSS MB"]
    ]
    for system, r in results.items():
        med = statistics.median(r["times"])
        name = (
            f"faceindex ({args.detector}+{args.embedder})"
            if system == "faceindex"
            else "face_recognition (hog+resnet)"
        )
        rows.append(
            [
                name,
                f"{len(files) / med:.2f}",
                f"{med:.2f}",
                str(sum(r["counts"])),
                str(sum(c == 0 for c in r["counts"])),
                f"{r['load_s']:.2f}",
                f"{r['peak_rss_mb']:.0f}",
            ]
        )
    print(fmt_table(rows))
    if "face_recognition" in results:
        fi = statistics.median(results["faceindex"]["times"])
        fr = statistics.median(results["face_recognition"]["times"])
        print(
            f"speed ratio faceindex/peer: {fr / fi:.2f}x (target >= 2x); faces found "
            f"{sum(results['faceindex']['counts'])} vs {sum(results['face_recognition']['counts'])}"
        )
        missed = [
            f.name
            for f, a, b in zip(
                files,
                results["faceindex"]["counts"],
                results["face_recognition"]["counts"],
                strict=True,
            )
            if a < b
        ]
        if missed:
            print(f"photos where faceindex found fewer faces than the peer: {missed}")
    if len(files) >= 2:
        cold = cold_verify(files[0], files[1], 3)
        print(
            f"cold `faceindex verify A B` (new process, median of 3): {cold:.2f} s (target < 3 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
