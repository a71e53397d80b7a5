"""Calibrate each embedder's match threshold (and the fusion weight) on held-out identities.

Usage: python benchmarks/calibrate.py ../shared/dev-data/glint6 [--target-fmr 1e-3]

The folder has one subfolder of face photos per person. People are split into two halves
by a fixed rule (sorted names; even positions calibrate, odd positions evaluate), so the
figures printed for the other half are honest. This is the calibration of faceindex 0.1
(``fusion-v1``), kept for comparison: the shipped thresholds and fusion weights now come
from ``benchmarks/generalisation.py``, which tunes and tests across datasets and people.
Every pair within a half is used (all genuine and all impostor pairs), which gives enough
impostors to measure an FMR of 1e-3.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from faceindex.detection.yunet import YuNetDetector
from faceindex.embedding import l2_normalise
from faceindex.embedding.dlib_resnet import DlibResnetEmbedder
from faceindex.embedding.sface import SFaceEmbedder
from faceindex.eval import metrics
from faceindex.io.files import person_folders
from faceindex.io.image import load_image


def all_pairs(labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.array(list(itertools.combinations(range(len(labels)), 2)))
    lab = np.array(labels)
    return idx[:, 0], idx[:, 1], (lab[idx[:, 0]] == lab[idx[:, 1]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--target-fmr", type=float, default=1e-3)
    ap.add_argument("--dlib-backend", default="onnx", choices=["onnx", "dlib"])
    args = ap.parse_args(argv)

    photos = dict(person_folders(args.data_dir))
    people = sorted(photos)
    halves = {"calibration": people[0::2], "evaluation": people[1::2]}
    print(f"calibration people: {halves['calibration']}\nevaluation people: {halves['evaluation']}")

    detector = YuNetDetector()
    sface = SFaceEmbedder()
    dlib_emb = DlibResnetEmbedder(backend=args.dlib_backend)
    vecs: dict[str, list[np.ndarray]] = {"sface": [], "sface+flip": [], "dlib": [], "dlib+flip": []}
    labels: dict[str, list[str]] = {}
    order: list[str] = []
    misses = 0
    t0 = time.perf_counter()
    for person in people:
        for path in photos[person]:
            image = load_image(path)
            faces = detector.detect(image)
            if not faces:
                misses += 1
                continue
            face = faces[:1]
            crops = sface.crops(image, face)
            chips = dlib_emb.chips(image, face)
            s = sface.embed_crops(crops)[0]
            s_f = sface.embed_crops([c[:, ::-1] for c in crops])[0]
            d = dlib_emb.embed_chips(chips)[0]
            d_f = dlib_emb.embed_chips([c[:, ::-1] for c in chips])[0]
            vecs["sface"].append(s)
            vecs["sface+flip"].append(l2_normalise(s + s_f))
            vecs["dlib"].append(d)
            vecs["dlib+flip"].append(l2_normalise(d + d_f))
            order.append(person)
    print(
        f"embedded {len(order)} photos ({misses} without a face) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    for half in halves:
        labels[half] = [p for p in order if p in halves[half]]

    def sims(kind: str, half: str, w: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        mask = np.array([p in halves[half] for p in order])
        lab = [p for p, m in zip(order, mask, strict=True) if m]
        i, j, same = all_pairs(lab)
        if w is None:
            v = np.array(vecs[kind])[mask]
            return np.sum(v[i] * v[j], axis=1), same
        flip = "+flip" if kind.endswith("+flip") else ""
        s = np.array(vecs["sface" + flip])[mask]
        d = np.array(vecs["dlib" + flip])[mask]
        return w * np.sum(s[i] * s[j], 1) + (1 - w) * np.sum(d[i] * d[j], 1), same

    print(
        f"\n{'model':<22}{'EER cal':>9}{'EER eval':>10}{'TAR@1e-3 eval':>15}"
        f"{'thr@FMR':>9}{'FMR eval':>10}{'FNMR eval':>11}"
    )
    best_w: dict[str, float] = {}
    for flip in ("", "+flip"):
        grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
        eers = [metrics.eer(*sims("fusion" + flip, "calibration", float(w)))[0] for w in grid]
        best_w[flip] = float(grid[int(np.argmin(eers))])
    rows = [
        ("sface", None),
        ("sface+flip", None),
        ("dlib", None),
        ("dlib+flip", None),
        ("fusion", best_w[""]),
        ("fusion+flip", best_w["+flip"]),
    ]
    for kind, w in rows:
        cal_s, cal_y = sims(kind, "calibration", w)
        ev_s, ev_y = sims(kind, "evaluation", w)
        thr = metrics.threshold_at_fmr(cal_s, cal_y, args.target_fmr)
        fmr, fnmr = metrics.rates_at(ev_s, ev_y, thr)
        name = kind + (f" w={w:.2f}" if w is not None else "")
        print(
            f"{name:<22}{metrics.eer(cal_s, cal_y)[0]:>9.4f}{metrics.eer(ev_s, ev_y)[0]:>10.4f}"
            f"{metrics.tar_at_fmr(ev_s, ev_y, 1e-3):>15.4f}{thr:>9.4f}{fmr:>10.4f}{fnmr:>11.4f}"
        )
    n_imp = int((~all_pairs(labels["calibration"])[2]).sum())
    print(
        f"\n(calibration half: {n_imp} impostor pairs; threshold = lowest with FMR <= "
        f"{args.target_fmr:g} there)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
