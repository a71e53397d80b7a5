"""Milliseconds per face of dlib's ResNet descriptor: our ONNX port vs dlib-bin, same run.

Both sides get the same chips, cut from photos as face_recognition does (HOG detector,
5-point landmarks, ``dlib.get_face_chip(size=150, padding=0.25)``) and tiled up to each
batch size. dlib-bin is timed twice: one ``compute_face_descriptor(chip)`` call per face,
and its list overload (which runs dlib's own mini-batches of 16). Medians over
``--repeats`` runs after one warm-up run; ratios are dlib / ONNX.

    python benchmarks/embedder.py [--chips-from DIR] [--repeats 5] [--threads N] [--no-spin]

The machine should be otherwise idle: onnxruntime's multi-threaded timings are the first to
suffer from a neighbour process (measured up to 3x), dlib's single thread much less.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt
import onnxruntime
from PIL import Image

from faceindex.embedding.dlib_resnet import onnx_graph as port
from faceindex.io.files import photos_in
from faceindex.models.catalog import DLIB_RESNET, DLIB_SHAPE5

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images"
BATCH_SIZES = (1, 8, 32)

Chips = npt.NDArray[np.uint8]


def cut_chips(folder: Path) -> Chips:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(DLIB_SHAPE5.verified_path()))
    chips = []
    for path in photos_in(folder):
        image = np.asarray(Image.open(path).convert("RGB"))
        for box in detector(image, 1):
            chips.append(dlib.get_face_chip(image, predictor(image, box), size=150, padding=0.25))
    if not chips:
        raise SystemExit(f"no faces found in {folder}")
    return np.stack(chips)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first-call allocations and thread-pool start are not steady state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dlib_one_by_one(model: Any, chips: list[Chips]) -> None:
    for chip in chips:
        model.compute_face_descriptor(chip)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chips-from", type=Path, default=FIXTURES, help="folder of photos")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--no-spin", action="store_true", help="stop onnxruntime's threads busy-waiting"
    )
    parser.add_argument(
        "--photos",
        type=Path,
        default=None,
        help="also time photos/s end to end on this folder (e.g. ../shared/dev-data/faces)",
    )
    args = parser.parse_args()

    chips = cut_chips(args.chips_from)
    print(f"{len(chips)} chips from {args.chips_from}")
    print(
        f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, "
        f"dlib {dlib.__version__}, {os.cpu_count()} CPUs "
        f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable)"
    )

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        port.cached_model_path(cache_dir=Path(cache))
        built = time.perf_counter() - start
        embedder = port.DlibResnetOnnx(
            cache_dir=Path(cache), intra_op_threads=args.threads, allow_spinning=not args.no_spin
        )
        start = time.perf_counter()
        embedder.session()
        loaded = time.perf_counter() - start
        print(
            f"ONNX graph: built in {built * 1000:.0f} ms, "
            f"session loaded in {loaded * 1000:.0f} ms, "
            f"{embedder.intra_op_threads} intra-op threads"
        )

        model = dlib.face_recognition_model_v1(str(DLIB_RESNET.verified_path()))
        reference = np.array([np.array(model.compute_face_descriptor(c)) for c in chips])
        diff = np.abs(embedder.embed_chips(chips) - reference).max()
        print(f"max abs difference ONNX vs dlib over these chips: {diff:.2e}\n")

        header = (
            f"{'batch':>5}  {'onnx ms/face':>12}  {'dlib loop':>10}  {'dlib list':>10}  "
            f"{'loop/onnx':>9}  {'list/onnx':>9}"
        )
        print(header)
        print("-" * len(header))
        for size in BATCH_SIZES:
            batch = np.ascontiguousarray(np.resize(chips, (size, *chips.shape[1:])))
            as_list = list(batch)
            onnx_ms = median_seconds(partial(embedder.embed_chips, batch), args.repeats)
            loop_ms = median_seconds(partial(dlib_one_by_one, model, as_list), args.repeats)
            list_ms = median_seconds(partial(model.compute_face_descriptor, as_list), args.repeats)
            onnx_ms, loop_ms, list_ms = (1000 * t / size for t in (onnx_ms, loop_ms, list_ms))
            print(
                f"{size:>5}  {onnx_ms:>12.2f}  {loop_ms:>10.2f}  {list_ms:>10.2f}  "
                f"{loop_ms / onnx_ms:>8.1f}x  {list_ms / onnx_ms:>8.1f}x"
            )

    if args.photos is not None:
        end_to_end(args.photos, args.repeats)


def end_to_end(photos: Path, repeats: int) -> None:
    """Photos per second, decode + detect + embed every face, fusion before and after the port.

    Each configuration runs in its own process through benchmarks/throughput.py's worker
    mode, on the same photos: faceindex with the fused embedder computing dlib's descriptor
    with dlib itself ("before") and with the ONNX graph ("after"), and face_recognition.
    """
    import json
    import statistics
    import subprocess
    import sys

    here = Path(__file__).resolve().parent
    runs = {
        "fusion, dlib descriptor via dlib-bin (before)": [
            "--system",
            "faceindex",
            "--dlib-backend",
            "dlib",
        ],
        "fusion, dlib descriptor via ONNX (after)": [
            "--system",
            "faceindex",
            "--dlib-backend",
            "onnx",
        ],
        "face_recognition (hog + dlib)": ["--system", "face_recognition"],
    }
    print(f"\nend to end on {photos} ({repeats} passes each, median):")
    rates = {}
    for name, extra in runs.items():
        cmd = [
            sys.executable,
            str(here / "throughput.py"),
            str(photos),
            "--repeats",
            str(repeats),
            *extra,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        n = len(result["counts"])
        rates[name] = n / statistics.median(result["times"])
        print(f"  {name:<48} {rates[name]:6.2f} photos/s, {sum(result['counts'])} faces")
    before, after, peer = rates.values()
    print(
        f"  after/before: {after / before:.2f}x; after/face_recognition: {after / peer:.2f}x "
        "(target >= 3x)"
    )


if __name__ == "__main__":
    main()
