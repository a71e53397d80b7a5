"""Passive liveness (presentation-attack detection): ISO/IEC 30107-3 figures on unseen subjects.

Usage: python benchmarks/liveness.py ../shared/dev-data/nuaa-dev [--json OUT] [--sanity-every 8]

DATA_DIR holds labels.csv (path,label,subject[,condition columns]) and the photos. Each
photo's largest face is found by the project's detector (YuNet). Two feature sets are
trained and scored by the same code (faceindex.liveness.training.train: logistic
regression, Platt calibration and a threshold from an inner leave-one-subject-out over the
training subjects only):

- baseline: uniform LBP (P=8, R=1) of H, S, V, Y, Cb, Cr on a 64x64 crop (the issue's);
- colour-texture (shipped): the same LBP on a 96x96 crop + colour moments + sharpness
  cues, scored with the checker's guards (flat / atypical / blurred crops score 0).

Protocols:
1. leave-one-subject-out: train on the other subjects, test on the held-out one; per fold
   and pooled (each face at its own fold's threshold). APCER, BPCER, ACER at the default
   threshold; BPCER at APCER 1% and 5% (per fold, then averaged);
2. cross-condition: leave one value of each extra labels.csv column out (when there is
   one), and leave one NUAA session out (the 4th field of NUAA file names: 01, 02, 03;
   subjects are then seen in training: a weaker test, reported for the lighting change);
3. sanity cases, each scored by a model that never saw the face's subject: uniform images
   and random noise (through the detector, and forced onto a central box), live faces
   blurred (sigma 4 and 8 px), live faces shown on a simulated screen and re-captured
   (moire, bezel, glare, perspective; faceindex.liveness.attacks); and ordinary photos of
   people (tests/fixtures/images: press photos, themselves not "live" captures);
4. time per face of the shipped checker (crop + features + model) and of detection.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from faceindex.liveness import attacks
from faceindex.liveness.classifier import LinearModel
from faceindex.liveness.dataset import read_labels
from faceindex.liveness.features import FeatureSpec
from faceindex.liveness.metrics import PadReport, apcer, bpcer, pad_report
from faceindex.liveness.texture import ColourTextureChecker, guarded_scores
from faceindex.liveness.training import (
    BASELINE_SPEC,
    DEFAULT_L2,
    DEFAULT_SPEC,
    featurise,
    train,
)
from faceindex.pipeline import Pipeline
from faceindex.types import BBox, Face, ImageArray


def _scores(
    model: LinearModel, spec: FeatureSpec, x: np.ndarray, contrast: np.ndarray, guards: bool
) -> np.ndarray:
    if guards:
        return guarded_scores(model, spec, x, contrast)
    return model.probability(x)


def _row(name: str, r: PadReport) -> str:
    return (
        f"  {name:<22} thr {r.threshold:6.3f}  APCER {100 * r.apcer:5.2f}%  "
        f"BPCER {100 * r.bpcer:5.2f}%  ACER {100 * r.acer:5.2f}%  "
        f"BPCER@APCER1% {100 * r.bpcer_at_apcer_1:5.2f}%  "
        f"BPCER@APCER5% {100 * r.bpcer_at_apcer_5:5.2f}%  (live {r.n_live}, attack {r.n_attack})"
    )


def leave_one_out(
    groups: np.ndarray,
    x: np.ndarray,
    contrast: np.ndarray,
    live: np.ndarray,
    subjects: np.ndarray,
    spec: FeatureSpec,
    *,
    guards: bool,
    l2: float,
) -> tuple[dict[str, PadReport], dict[str, float], dict[str, LinearModel]]:
    """Train without each value of ``groups`` and test on it; returns per-group reports,
    pooled figures and the models (for the sanity cases)."""
    reports: dict[str, PadReport] = {}
    models: dict[str, LinearModel] = {}
    pooled_a, pooled_b = 0.0, 0.0
    for g in sorted(set(groups.tolist())):
        test = groups == g
        if live[test].all() or not live[test].any():
            continue  # a group with one class only cannot give both errors
        model = train(x[~test], live[~test], subjects[~test], l2=l2, spec=spec)
        s = _scores(model, spec, x[test], contrast[test], guards)
        reports[g] = pad_report(s, live[test], model.threshold)
        models[g] = model
        pooled_a += apcer(s, live[test], model.threshold) * (~live[test]).sum()
        pooled_b += bpcer(s, live[test], model.threshold) * live[test].sum()
    tested = np.isin(groups, list(reports))
    n_att, n_live = int((~live[tested]).sum()), int(live[tested].sum())
    pooled = {
        "apcer": pooled_a / max(n_att, 1),
        "bpcer": pooled_b / max(n_live, 1),
        "bpcer_at_apcer_1pct_mean": float(np.mean([r.bpcer_at_apcer_1 for r in reports.values()])),
        "bpcer_at_apcer_5pct_mean": float(np.mean([r.bpcer_at_apcer_5 for r in reports.values()])),
    }
    pooled["acer"] = (pooled["apcer"] + pooled["bpcer"]) / 2
    return reports, pooled, models


def _pooled_line(p: dict[str, float]) -> str:
    return (
        f"  {'pooled':<22}            APCER {100 * p['apcer']:5.2f}%  BPCER "
        f"{100 * p['bpcer']:5.2f}%  ACER {100 * p['acer']:5.2f}%  BPCER@APCER1% (mean) "
        f"{100 * p['bpcer_at_apcer_1pct_mean']:5.2f}%  BPCER@APCER5% (mean) "
        f"{100 * p['bpcer_at_apcer_5pct_mean']:5.2f}%"
    )


def nuaa_session(path: Path) -> str:
    """The session field of a NUAA file name (``0001_00_00_01_101.jpg`` -> ``01``)."""
    m = re.match(r"^\d+_\d+_\d+_(\d+)_\d+$", path.stem)
    return m.group(1) if m else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--l2", type=float, default=DEFAULT_L2)
    ap.add_argument("--sanity-every", type=int, default=8, help="every Nth live photo (sanity)")
    ap.add_argument("--json", type=Path, help="write every figure to this JSON file")
    ap.add_argument(
        "--live-photos",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images",
        help="a folder of ordinary photos of people, scored by the shipped model",
    )
    args = ap.parse_args(argv)

    photos = read_labels(args.data_dir)
    pipeline = Pipeline.from_settings()
    images: list[ImageArray | None] = []
    faces: list[Face | None] = []
    detect_ms = []
    for p in photos:
        image = pipeline.load(p.path)
        t0 = time.perf_counter()
        found = pipeline.detector.detect(image)
        detect_ms.append(1000 * (time.perf_counter() - t0))
        images.append(image if found else None)
        faces.append(found[0] if found else None)
    keep = np.array([f is not None for f in faces])
    live = np.array([p.live for p in photos])
    subjects = np.array([p.subject for p in photos])
    print(
        f"{args.data_dir}: {len(photos)} photos ({int(live.sum())} live, {int((~live).sum())} "
        f"attack), {len(set(subjects.tolist()))} subjects; {int((~keep).sum())} without a face "
        "(left out)"
    )
    idx = np.flatnonzero(keep)
    live_k, subj_k = live[keep], subjects[keep]
    out: dict[str, object] = {"data": str(args.data_dir), "photos": len(photos)}

    systems = {
        "baseline (LBP 64, LR)": (BASELINE_SPEC, False),
        "colour-texture (shipped)": (DEFAULT_SPEC, True),
    }
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (spec, _) in systems.items():
        x, c = featurise(images, faces, spec)
        feats[name] = (x[keep], c[keep])

    fold_models: dict[str, LinearModel] = {}
    print("\n1. leave-one-subject-out (train on the others, threshold from them, test on one)")
    for name, (spec, guards) in systems.items():
        x, c = feats[name]
        reports, pooled, models = leave_one_out(
            subj_k, x, c, live_k, subj_k, spec, guards=guards, l2=args.l2
        )
        print(f" {name}")
        for g, r in reports.items():
            print(_row(f"subject {g}", r))
        print(_pooled_line(pooled))
        out[f"loso/{name}"] = {
            "folds": {g: r.as_dict() for g, r in reports.items()},
            "pooled": pooled,
        }
        if guards:
            fold_models = models

    print("\n2. cross-condition")
    conditions = {k for p in photos for k in p.conditions}
    columns: dict[str, np.ndarray] = {
        k: np.array([p.conditions.get(k, "") for p in photos])[keep] for k in sorted(conditions)
    }
    if not conditions:
        print("  labels.csv has no condition columns (lighting, session...)")
    sessions = np.array([nuaa_session(p.path) for p in photos])[keep]
    if all(sessions) and len(set(sessions.tolist())) > 1:
        columns["nuaa-session (file name; subjects seen)"] = sessions
    for column, groups in columns.items():
        for name, (spec, guards) in systems.items():
            x, c = feats[name]
            reports, pooled, _ = leave_one_out(
                groups, x, c, live_k, subj_k, spec, guards=guards, l2=args.l2
            )
            print(f" leave one {column} out: {name}")
            for g, r in reports.items():
                print(_row(f"{column.split()[0]} {g}", r))
            print(_pooled_line(pooled))
            out[f"cross/{column}/{name}"] = {
                "folds": {g: r.as_dict() for g, r in reports.items()},
                "pooled": pooled,
            }

    print("\n3. sanity cases (colour-texture; each face scored by a model without its subject)")
    spec = DEFAULT_SPEC
    checker = ColourTextureChecker()
    sanity: dict[str, object] = {}

    def fold_checker(subject: str) -> ColourTextureChecker:
        return ColourTextureChecker(model=fold_models[subject])

    centre = Face(BBox(220.0, 140.0, 420.0, 340.0), 0.0)
    flat_noise: list[tuple[str, ImageArray]] = [
        *[(f"uniform {v}", attacks.uniform_image(value=v)) for v in (0, 128, 255)],
        *[(f"noise seed {s}", attacks.noise_image(seed=s)) for s in range(5)],
    ]
    for label, image in flat_noise:
        found = pipeline.detector.detect(image)
        via_detector = [round(s.score, 4) for s in checker.check(image, found)]
        forced = checker.check(image, [centre])[0]
        print(
            f"  {label:<16} faces found {len(found)} {via_detector}; forced box: score "
            f"{forced.score:.4f} live={forced.live}"
        )
        sanity[label] = {"faces": via_detector, "forced_score": forced.score}

    live_rows = [i for i in idx if live[i]][:: args.sanity_every]
    cases = {
        "live (as is)": lambda im, s: im,
        "blurred sigma 4": lambda im, s: attacks.blurred(im, sigma=4.0),
        "blurred sigma 8": lambda im, s: attacks.blurred(im, sigma=8.0),
        "screen recapture": lambda im, s: attacks.screen_recapture(im, seed=s),
    }
    for label, make in cases.items():
        n_faces, n_live, n_raw, scores = 0, 0, 0, []
        for k, i in enumerate(live_rows):
            image = images[i]
            if image is None:
                continue
            derived = make(image, k)
            found = pipeline.detector.detect(derived)
            if not found:
                continue
            n_faces += 1
            fold = fold_checker(str(subjects[i]))
            result = fold.check(derived, found[:1])[0]
            x, _ = fold.features(derived, found[:1])
            n_raw += int(fold.model.probability(x)[0] >= fold.threshold)
            scores.append(result.score)
            n_live += int(result.live)
        med = statistics.median(scores) if scores else float("nan")
        print(
            f"  {label:<18} {len(live_rows)} photos, {n_faces} with a face, judged live "
            f"{n_live}/{n_faces} (classifier alone, without the guards: {n_raw}/{n_faces}); "
            f"median score {med:.3f}"
        )
        sanity[label] = {
            "photos": len(live_rows),
            "faces": n_faces,
            "live": n_live,
            "live_without_guards": n_raw,
        }
    if args.live_photos.is_dir():
        verdicts = []
        for path in sorted(args.live_photos.iterdir()):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            image = pipeline.load(path)
            for r in checker.check(image, pipeline.detector.detect(image)):
                verdicts.append((path.name, r.score, r.live))
        n_live = sum(v[2] for v in verdicts)
        print(
            f"  ordinary photos ({args.live_photos}; shipped model): {n_live}/{len(verdicts)} "
            "faces judged live: " + ", ".join(f"{n} {s:.3f}" for n, s, _ in verdicts)
        )
        sanity["ordinary photos"] = {"faces": len(verdicts), "live": n_live}
    out["sanity"] = sanity

    print("\n4. time (this machine; median over the data set's faces)")
    checker.warm_up()
    per_face = []
    for i in idx:
        image, face = images[i], faces[i]
        assert image is not None and face is not None
        t0 = time.perf_counter()
        checker.check(image, [face])
        per_face.append(1000 * (time.perf_counter() - t0))
    t_check = statistics.median(per_face)
    t_detect = statistics.median(detect_ms)
    base_ms = []
    for i in idx[:: max(1, len(idx) // 100)]:
        t0 = time.perf_counter()
        featurise([images[i]], [faces[i]], BASELINE_SPEC)
        base_ms.append(1000 * (time.perf_counter() - t0))
    print(
        f"  colour-texture check: {t_check:.1f} ms per face (p90 "
        f"{float(np.percentile(per_face, 90)):.1f}); baseline features "
        f"{statistics.median(base_ms):.1f} ms; YuNet detection {t_detect:.1f} ms per 640x480 photo"
    )
    out["time_ms"] = {"check": t_check, "detect": t_detect, "baseline": statistics.median(base_ms)}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
