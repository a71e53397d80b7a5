"""Verification accuracy of faceindex vs face_recognition on the same pairs, in one run.

Usage: python benchmarks/verification.py DATA_DIR [--embedder fusion] [--detector yunet]

DATA_DIR is the dev-data folder (with glint6/ and faces/). For each pair set it prints,
for each system: AUC, EER, TAR at FAR 1e-2 and 1e-3, accuracy at the system's default
threshold, and failures (photos where no face was found). A pair with a failure gets the
worst possible score, as a deployed system would reject it; the peer's figures on only the
pairs it could score are printed too.

The peer is face_recognition 1.3 as its README uses it: ``face_encodings(image)`` (HOG
detector, upsample 1, 5-point alignment), similarity = -Euclidean distance, default
tolerance 0.6.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _common import csv_pairs, faces_pairs, fmt_table
from faceindex.config import DetectionSettings, EmbeddingSettings, Settings
from faceindex.errors import FaceIndexError
from faceindex.eval import metrics
from faceindex.pipeline import Pipeline

Pair = tuple[str, str, bool]


def score_pairs(
    pairs: list[Pair],
    root: Path,
    embed: Callable[[Path], np.ndarray | None],
    compare: Callable[[np.ndarray, np.ndarray], float],
) -> tuple[np.ndarray, np.ndarray, int, float]:
    cache: dict[str, np.ndarray | None] = {}
    t0 = time.perf_counter()
    for a, b, _ in pairs:
        for p in (a, b):
            if p not in cache:
                cache[p] = embed(root / p)
    elapsed = time.perf_counter() - t0
    scores = np.array(
        [
            -np.inf if cache[a] is None or cache[b] is None else compare(cache[a], cache[b])
            for a, b, _ in pairs
        ]
    )
    same = np.array([s for _, _, s in pairs])
    failures = sum(v is None for v in cache.values())
    return scores, same, failures, elapsed / max(len(cache), 1)


def report(
    name: str,
    scores: np.ndarray,
    same: np.ndarray,
    threshold: float,
    failures: int,
    per_photo_s: float,
) -> list[str]:
    eer, _ = metrics.eer(scores, same)
    return [
        name,
        f"{metrics.auc(scores, same):.4f}",
        f"{eer:.4f}",
        f"{metrics.tar_at_fmr(scores, same, 1e-2):.4f}",
        f"{metrics.tar_at_fmr(scores, same, 1e-3):.4f}",
        f"{metrics.accuracy_at(scores, same, threshold):.4f}",
        str(failures),
        f"{per_photo_s * 1000:.0f}",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--embedder", default=EmbeddingSettings().embedder)
    ap.add_argument("--detector", default=DetectionSettings().detector)
    ap.add_argument("--no-peer", action="store_true", help="skip face_recognition")
    args = ap.parse_args(argv)

    settings = Settings(
        detection=DetectionSettings(detector=args.detector),
        embedding=EmbeddingSettings(embedder=args.embedder),
    )
    pipeline = Pipeline.from_settings(settings)
    pipeline.warm_up()

    def fi_embed(path: Path) -> np.ndarray | None:
        try:
            face = pipeline.subject_face(path)
        except FaceIndexError:
            return None
        return None if face.embedding is None else face.embedding.vector

    peer = None
    if not args.no_peer:
        import face_recognition as peer

    def fr_embed(path: Path) -> np.ndarray | None:
        image = peer.load_image_file(str(path))
        locations = peer.face_locations(image)
        if not locations:
            return None
        # largest face, as faceindex does
        top, right, bottom, left = max(locations, key=lambda r: (r[2] - r[0]) * (r[1] - r[3]))
        return np.asarray(peer.face_encodings(image, [(top, right, bottom, left)])[0])

    sets: list[tuple[str, list[Pair], Path]] = []
    glint = args.data_dir / "glint6" / "pairs.csv"
    if glint.is_file():
        sets.append(("glint6/pairs.csv", csv_pairs(glint), glint.parent))
    faces_dir = args.data_dir / "faces"
    if faces_dir.is_dir():
        sets.append(("faces/ (all pairs)", faces_pairs(faces_dir), faces_dir))
    if not sets:
        print(f"no glint6/pairs.csv or faces/ under {args.data_dir}", file=sys.stderr)
        return 2

    header = ["system", "AUC", "EER", "TAR@1e-2", "TAR@1e-3", "acc@default", "failures", "ms/photo"]
    for title, pairs, root in sets:
        n_gen = sum(s for *_, s in pairs)
        print(f"\n== {title}: {n_gen} genuine, {len(pairs) - n_gen} impostor pairs ==")
        rows = [header]
        s, y, fails, t = score_pairs(pairs, root, fi_embed, lambda a, b: float(np.dot(a, b)))
        fi_eer = metrics.eer(s, y)[0]
        fi_tar = metrics.tar_at_fmr(s, y, 1e-3)
        rows.append(
            report(
                f"faceindex ({args.detector}+{args.embedder})", s, y, pipeline.threshold, fails, t
            )
        )
        if peer is not None:
            ps, py, pfails, pt = score_pairs(
                pairs, root, fr_embed, lambda a, b: -float(np.linalg.norm(a - b))
            )
            rows.append(report("face_recognition (hog+resnet)", ps, py, -0.6, pfails, pt))
            ok = np.isfinite(ps)
            if (~ok).any() and ok.any() and py[ok].any() and (~py[ok]).any():
                # Like for like: both systems on the pairs the peer could score.
                rows.append(report("  peer, on pairs it scored", ps[ok], py[ok], -0.6, 0, pt))
                rows.append(
                    report("  faceindex, same pairs", s[ok], y[ok], pipeline.threshold, 0, t)
                )
        print(fmt_table(rows))
        if peer is not None:
            peer_eer = metrics.eer(ps, py)[0]
            peer_tar = metrics.tar_at_fmr(ps, py, 1e-3)
            ratio = fi_eer / peer_eer if peer_eer > 0 else float("nan")
            print(
                f"EER ratio faceindex/peer: {ratio:.3f} (target <= 0.6); "
                f"TAR@1e-3 gain: {100 * (fi_tar - peer_tar):+.1f} points (target >= +15)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
