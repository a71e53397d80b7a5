"""A learned face quality: which per-face signals predict recognition error (issue 16).

Usage: python benchmarks/quality_edc.py ../shared/dev-data [--cache DIR] [--photos N]
       [--restored | --refined]
       [--signals-cache DIR]

Reuses ``benchmarks/degradation.py``'s protocol (the same pairs, the same degraded photos,
seeded identically) and its cached vectors. For every face of every side (the clean
photos, and each condition's degraded set) it measures, beside YuNet's confidence:

- ``sface_norm`` / ``dlib_norm``: the norm of each network's embedding *before*
  L2-normalisation (MagFace's observation: a network trained with a margin loss puts
  hard-to-recognise faces near the origin);
- ``sface_flip`` / ``dlib_flip``: the cosine of a face's embedding with its mirror image's
  (a cheap SER-FIQ: a face the network reads unreliably moves when mirrored); costs a
  second pass through each network.

The signals are cached per side (``--signals-cache``); then candidate scores are fitted
on glint6 only and their error-versus-reject curves (EDC) reported on lfw57 (held out),
beside the detector-only score and the library's (:func:`library_quality`); then the
reverse (fit on lfw57 people A-M, report on N-Z and on glint6); then, as a ceiling, a
fit on all of lfw57 reported on itself; then what a ``--reject-below`` floor does with
the library's score. Pair quality = the lower of its two faces' quality. Each model is a
logistic of the predictors per face, fitted by maximum likelihood on genuine pairs: a
pair is read right (similarity at the threshold or above) when both faces are
(:func:`fit_logistic`). Figures and verdict: docs/robustness.md ("A learned quality from
the embeddings").
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import degradation as dg
from _common import fmt_table
from faceindex.embedding import l2_normalise
from faceindex.io.image import load_image
from faceindex.pipeline import Pipeline, is_crop_fallback
from faceindex.quality import UNSCORED_DETECTOR_INPUT
from faceindex.testing import degrade
from faceindex.types import BBox, Face, ImageArray

#: Per-face signals measured here (nan where no face was found).
SIGNALS = ("sface_norm", "dlib_norm", "sface_flip", "dlib_flip", "fallback")


def face_signals(pipeline: Pipeline, image: ImageArray) -> tuple[np.ndarray, np.ndarray]:
    """(signals, fused vector) of the subject of ``image``, as degradation.py embeds it."""
    face = dg.subject(pipeline, image)
    emb = pipeline.embedder
    if face is None:
        return np.full(len(SIGNALS), np.nan), np.full(emb.spec.dim, np.nan)
    sface, dlib = emb.sface, emb.dlib  # type: ignore[attr-defined]
    crop = sface.crops(image, [face])[0]
    batch = np.stack([crop, crop[:, ::-1]]).astype(np.float32).transpose(0, 3, 1, 2)
    session = sface._session.get()
    name = session.get_inputs()[0].name
    rs = np.asarray(session.run(None, {name: np.ascontiguousarray(batch)})[0]).reshape(2, -1)
    chip = dlib.chips(image, [face])[0]
    rd = np.asarray(
        dlib._net.get().embed_chips(np.ascontiguousarray(np.stack([chip, chip[:, ::-1]]))),
        np.float32,
    )
    ns, nd = l2_normalise(rs), l2_normalise(rd)
    fused = emb.fuse(ns[:1], nd[:1])[0]
    sig = [
        np.linalg.norm(rs[0]),
        np.linalg.norm(rd[0]),
        float(ns[0] @ ns[1]),
        float(nd[0] @ nd[1]),
        float(is_crop_fallback(face)),
    ]
    return np.array(sig, np.float64), np.asarray(fused, np.float64)


def side_signals(
    pipeline: Pipeline,
    paths: list[Path],
    root: Path,
    transform: dg.Transform | None,
    clean_faces: list[Face | None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every photo of ``paths`` degraded exactly as ``degradation.embed_side`` does."""
    sigs, vecs = [], []
    for i, path in enumerate(paths):
        image = load_image(path)
        if transform is not None:
            assert clean_faces is not None
            face = clean_faces[i]
            if face is None:
                face = Face(BBox(0, 0, image.shape[1], image.shape[0]), 0.0)
            seed = degrade.photo_seed(dg.SEED, str(path.relative_to(root)))
            with contextlib.suppress(AssertionError, ValueError):
                image = transform(image, face, seed)
        s, v = face_signals(pipeline, image)
        sigs.append(s)
        vecs.append(v)
    return np.array(sigs), np.array(vecs)


def cached_signals(
    file: Path, make: Callable[[], tuple[np.ndarray, np.ndarray]], reference: np.ndarray
) -> np.ndarray:
    """The side's signals (cached in ``file``); checks its fused vectors against
    degradation.py's cached ones (``reference``): the same faces were measured."""
    if file.is_file():
        return np.asarray(np.load(file)["signals"])
    t0 = time.perf_counter()
    sig, vec = make()
    both = np.isfinite(vec[:, 0]) & np.isfinite(reference[:, 0])
    agree = np.isfinite(vec[:, 0]) == np.isfinite(reference[:, 0])
    worst = float(np.max(np.abs(vec[both] - reference[both]), initial=0.0))
    print(
        f"  {file.name}: {len(sig)} photos in {time.perf_counter() - t0:.0f} s; "
        f"found-face agreement {agree.mean():.3f}, max |vector diff| {worst:.2e}"
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, signals=sig, max_diff=worst, agree=agree.mean())
    return sig


@dataclass
class Dataset:
    """Per pair: similarity, genuine?, condition label; per pair side: a face-feature row."""

    name: str
    s: np.ndarray
    y: np.ndarray
    label: np.ndarray
    fa: np.ndarray  # (pairs, F) features of the clean side
    fb: np.ndarray  # (pairs, F) features of the degraded side
    person_a: np.ndarray  # person (folder) of each side
    person_b: np.ndarray


#: Face features (columns of ``Dataset.fa`` / ``fb``): degradation.py's cached measures
#: (found, fallback, detector score), the first four SIGNALS, then the quality measures.
FEATURES = ("found", "fallback", "det_score", *SIGNALS[:4], "face_px", "sharpness", "light", "yaw")


def load_dataset(
    pipeline: Pipeline,
    name: str,
    root: Path,
    cache: Path,
    sig_cache: Path,
    n_photos: int,
    suffix: str = "",
) -> Dataset:
    """``suffix``: ``-restored`` reads degradation.py's vectors of the pipeline with
    restoration (the signals stay those of the faces as they are, as the library's score)."""
    p = dg.protocol(name, root, n_photos)
    tag = f"{name}-{n_photos}"
    clean = dg.cached_side(cache / f"{name}-clean{suffix}.npz", lambda: _missing(cache), False)
    clean_sig = cached_signals(
        sig_cache / f"{name}-clean.npz",
        lambda: side_signals(pipeline, p.paths, p.root, None, None),
        clean.vectors,
    )

    def feats(side: dg.Side, sig: np.ndarray) -> np.ndarray:
        m = side.measures
        return np.column_stack([m[:, 0], m[:, 1], m[:, 2], sig[:, :4], m[:, 3:7]])

    clean_f = feats(clean, clean_sig)
    deg_paths = [p.paths[i] for i in p.degraded]
    clean_faces = None
    ss, ys, labs, fas, fbs, pas, pbs = [], [], [], [], [], [], []
    person = np.array([path.parent.name for path in p.paths])
    sides: list[tuple[str, str, dg.Transform | None]] = [("clean", "-", None), *dg.CONDITIONS]
    for cond, level, fn in sides:
        if fn is None:
            side = dg.Side(
                clean.vectors[p.degraded], clean.peer[p.degraded], clean.measures[p.degraded]
            )
            fb = clean_f[p.degraded]
        else:
            key = f"{cond}-{level}".replace(" ", "_")
            side = dg.cached_side(
                cache / f"{tag}-{key}{suffix}.npz", lambda: _missing(cache), False
            )
            if clean_faces is None and not (sig_cache / f"{tag}-{key}.npz").is_file():
                clean_faces = [dg.subject(pipeline, load_image(x)) for x in deg_paths]
            sig = cached_signals(
                sig_cache / f"{tag}-{key}.npz",
                lambda fn=fn, cf=clean_faces: side_signals(pipeline, deg_paths, p.root, fn, cf),
                side.vectors,
            )
            fb = feats(side, sig)
        ss.append(dg.fi_scores(clean, side, p))
        ys.append(p.same)
        labs.append(np.full(len(p.same), f"{cond}/{level}"))
        fas.append(clean_f[p.a])
        fbs.append(fb[p.b])
        pas.append(person[p.a])
        pbs.append(person[p.degraded][p.b])
    cat = np.concatenate
    return Dataset(name, cat(ss), cat(ys), cat(labs), cat(fas), cat(fbs), cat(pas), cat(pbs))


def _missing(cache: Path) -> dg.Side:
    raise SystemExit(f"run benchmarks/degradation.py first: {cache} lacks a side")


# ------------------------------------------------------------------------------ analysis

SHARES = (0.0, 0.05, 0.1, 0.2, 0.3)
#: The detector score given to a crop-fallback face (no detector scored it): the middle
#: of the detector-only ramp, where that score puts it (0.5); the library's own constant.
FALLBACK_DET = UNSCORED_DETECTOR_INPUT


def design(f: np.ndarray, cols: tuple[str, ...]) -> np.ndarray:
    """Per-face predictors (higher = better read): the detector score, the log of each raw
    norm, -log(1 - flip cosine) (spreads the cosines that crowd under 1); and of the quality
    measures: log face size, log sharpness, light (-|mean luma - 128|), pose (-|yaw|)."""
    det = np.where(f[:, 1] > 0, FALLBACK_DET, f[:, 2])
    flip = lambda c: -np.log(np.clip(1.0 - c, 1e-4, None))  # noqa: E731
    all_cols = {
        "det": det,
        "sface_norm": np.log(np.maximum(f[:, 3], 1e-6)),
        "dlib_norm": np.log(np.maximum(f[:, 4], 1e-6)),
        "sface_flip": flip(f[:, 5]),
        "dlib_flip": flip(f[:, 6]),
        "log_px": np.log(np.maximum(f[:, 7], 1.0)),
        "log_sharp": np.log(np.maximum(f[:, 8], 1e-3)),
        "light": -np.abs(f[:, 9] - 128.0),
        "pose": -np.abs(f[:, 10]),
    }
    return np.column_stack([all_cols[c] for c in cols])


@dataclass
class Model:
    """quality = sigmoid(bias + weights . design(face)), 0 where no face was found."""

    cols: tuple[str, ...]
    weights: np.ndarray
    bias: float

    def __call__(self, f: np.ndarray) -> np.ndarray:
        x = design(f, self.cols)
        z = np.nan_to_num(self.bias + x @ self.weights, nan=-50.0)
        return np.where(f[:, 0] > 0, 1.0 / (1.0 + np.exp(-z)), 0.0)


def fit_logistic(
    d: Dataset, keep: np.ndarray, cols: tuple[str, ...], t: float, l2: float = 1e-3
) -> Model:
    """Fitted on the genuine pairs of ``keep`` where both faces were found: the pair is
    read correctly (similarity >= ``t``) with probability q(a) * q(b), each face's q a
    logistic of its predictors, i.e. a pair fails when either face fails. Maximum
    likelihood (scipy's L-BFGS) from a start at the detector's score alone."""
    from scipy.optimize import minimize

    m = keep & d.y & (d.fa[:, 0] > 0) & (d.fb[:, 0] > 0)
    xa, xb = design(d.fa[m], cols), design(d.fb[m], cols)
    ok = (d.s[m] >= t).astype(np.float64)
    mu, sd = np.concatenate([xa, xb]).mean(0), np.concatenate([xa, xb]).std(0) + 1e-9
    za, zb = (xa - mu) / sd, (xb - mu) / sd

    def loss(p: np.ndarray) -> float:
        b, w = p[0], p[1:]
        la = -np.logaddexp(0.0, -(b + za @ w))  # log q(a)
        lb = -np.logaddexp(0.0, -(b + zb @ w))
        lp = la + lb
        l1p = np.log(-np.expm1(np.minimum(lp, -1e-12)))
        return float(-(ok * lp + (1 - ok) * l1p).mean() + l2 * (w @ w))

    p0 = np.zeros(len(cols) + 1)
    p0[0] = 2.0
    res = minimize(loss, p0, method="L-BFGS-B")
    w = res.x[1:] / sd
    return Model(cols, w, float(res.x[0] - (mu / sd) @ res.x[1:]))


def library_quality(f: np.ndarray) -> np.ndarray:
    """The score the library gives an embedded face (``embedding_quality_score``, whose
    constants are this script's det + sface_norm fit on glint6): its row must equal that
    candidate's wherever glint6 is the fit."""
    from faceindex.quality import embedding_quality_score

    return np.array(
        [
            embedding_quality_score(None if row[1] else float(row[2]), float(row[3]))
            if row[0]
            else 0.0
            for row in f
        ]
    )


def floor_rows(name: str, d: Dataset, t: float, floors: tuple[float, ...]) -> list[list[str]]:
    """What ``--reject-below FLOOR`` does with the library's score: the share of pairs it
    answers "unsure" (clean pairs apart) and the FNMR at the threshold of the rest."""
    rows = []
    clean = d.label == "clean/-"
    for pop, keep in populations(d):
        q = np.minimum(library_quality(d.fa[keep]), library_quality(d.fb[keep]))
        s, y, c = d.s[keep], d.y[keep], clean[keep]
        base = float(np.mean(s[y] < t))
        for floor in floors:
            kept = q >= floor
            fnmr = float(np.mean(s[kept & y] < t)) if (kept & y).any() else float("nan")
            rows.append(
                [
                    f"{name} {pop}",
                    f"{floor:.2f}",
                    f"{1 - kept.mean():.3f}",
                    f"{1 - kept[c].mean():.3f}" if c.any() else "-",
                    f"{base:.4f} -> {fnmr:.4f} ({fnmr / max(base, 1e-9):.2f}x)",
                ]
            )
    return rows


def shipped_quality(f: np.ndarray) -> np.ndarray:
    from faceindex.quality import quality_score

    return np.array(
        [
            0.0
            if not row[0]
            else quality_score(
                face_px=0,
                sharpness=0,
                brightness=0,
                yaw=0,
                pitch=0,
                detector_score=None if row[1] else float(row[2]),
            )
            for row in f
        ]
    )


def populations(d: Dataset, subset: np.ndarray | None = None) -> list[tuple[str, np.ndarray]]:
    base = np.ones(len(d.s), bool) if subset is None else subset
    level = np.array([lab.split("/")[1] for lab in d.label])
    moderate = (d.label == "clean/-") | np.isin(level, list(dg.MODERATE))
    return [("all", base), ("moderate", base & moderate)]


def curve_rows(
    name: str,
    d: Dataset,
    scores: dict[str, Callable[[np.ndarray], np.ndarray]],
    t: float,
    subset: np.ndarray | None = None,
) -> tuple[list[list[str]], dict[tuple[str, str], list[float]]]:
    rows, ratios = [], {}
    for pop, keep in populations(d, subset):
        for label, fn in scores.items():
            q = np.minimum(fn(d.fa[keep]), fn(d.fb[keep]))
            c = dg.edc(q, d.s[keep], d.y[keep], t, SHARES)
            ratios[(pop, label)] = [x[1] / max(c[0][1], 1e-9) for x in c]
            rows.append(
                [f"{name} {pop}", label, f"{int(keep.sum())}"]
                + [f"{fnmr:.4f} ({fmr:.4f})" for _, fnmr, fmr, _ in c]
                + [" / ".join(f"{r:.2f}" for r in ratios[(pop, label)][2:4])]
            )
    return rows, ratios


HEADER = ["data", "quality", "pairs", *[f"FNMR (FMR) {s:.0%}" for s in SHARES], "x at 10% / 20%"]

#: Predictor sets tried.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "det": ("det",),
    "sface_norm": ("sface_norm",),
    "dlib_norm": ("dlib_norm",),
    "sface_flip": ("sface_flip",),
    "dlib_flip": ("dlib_flip",),
    "det+sface_norm": ("det", "sface_norm"),
    "det+norms": ("det", "sface_norm", "dlib_norm"),
    "det+flips": ("det", "sface_flip", "dlib_flip"),
    "norms+flips": ("sface_norm", "dlib_norm", "sface_flip", "dlib_flip"),
    "all5": ("det", "sface_norm", "dlib_norm", "sface_flip", "dlib_flip"),
    "det+sface_norm+sharp": ("det", "sface_norm", "log_sharp"),
    "det+sface_norm+measures": ("det", "sface_norm", "log_sharp", "log_px", "light", "pose"),
}


def study(
    train: Dataset,
    train_keep: np.ndarray,
    tests: list[tuple[str, Dataset, np.ndarray | None]],
    t: float,
    title: str,
) -> dict[str, Model]:
    models = {k: fit_logistic(train, train_keep, cols, t) for k, cols in CANDIDATES.items()}
    print(f"\n== {title} ==")
    for k, mdl in models.items():
        w = ", ".join(f"{c} {v:+.3f}" for c, v in zip(mdl.cols, mdl.weights, strict=True))
        print(f"  {k}: bias {mdl.bias:+.3f}; {w}")
    scores: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "detector only": shipped_quality,
        "library (embedded)": library_quality,
    }
    scores.update(models)
    for name, d, subset in tests:
        rows, _ = curve_rows(name, d, scores, t, subset)
        print(fmt_table([HEADER, *rows]))
    return models


def blend_grid(data: list[Dataset], t: float) -> None:
    """FNMR ratios at 10% / 20% rejected of ``a * det + (1 - a) * log sface_norm`` (both
    standardised on glint6's faces) for ``a`` from 0 to 1: the best blend of the two,
    chosen on each dataset itself (a ceiling, not a held-out figure)."""
    cols = ("det", "sface_norm")
    g = data[0]
    f = np.concatenate([g.fa, g.fb])
    x = design(f[f[:, 0] > 0], cols)
    mu, sd = x.mean(0), x.std(0)
    rows = [["a (det weight)", *[f"{d.name} {pop}" for d in data for pop in ("all", "moderate")]]]
    for a in np.linspace(0.0, 1.0, 11):
        w = np.array([a, 1.0 - a])

        def fn(f: np.ndarray, w: np.ndarray = w) -> np.ndarray:
            z = np.nan_to_num((design(f, cols) - mu) / sd @ w, nan=-50.0)
            return np.where(f[:, 0] > 0, z, -1e9)

        cells = []
        for d in data:
            for _pop, keep in populations(d):
                q = np.minimum(fn(d.fa[keep]), fn(d.fb[keep]))
                c = dg.edc(q, d.s[keep], d.y[keep], t, (0.0, 0.1, 0.2))
                cells.append(f"{c[1][1] / c[0][1]:.2f} / {c[2][1] / c[0][1]:.2f}")
        rows.append([f"{a:.1f}", *cells])
    print("\n== ceiling: blends of det and log sface_norm, FNMR ratio at 10% / 20% ==")
    print(fmt_table(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/faceindex-degradation"))
    ap.add_argument("--signals-cache", type=Path, default=Path("/tmp/faceindex-quality"))
    ap.add_argument("--photos", type=int, default=100)
    ap.add_argument(
        "--restored",
        action="store_true",
        help="similarities of the pipeline with restoration (degradation.py's -restored files)",
    )
    ap.add_argument(
        "--refined",
        action="store_true",
        help="similarities of the pipeline with restoration and landmark refinement (the "
        "default pipeline: degradation.py's -restored-refined files); the quality signals "
        "stay those of the faces aligned from the detector's landmarks",
    )
    args = ap.parse_args(argv)
    pipeline = Pipeline.from_settings()
    suffix = "-restored-refined" if args.refined else "-restored" if args.restored else ""
    data = {
        n: load_dataset(
            pipeline, n, args.data_dir / n, args.cache, args.signals_cache, args.photos, suffix
        )
        for n in ("glint6", "lfw57")
    }
    t = pipeline.threshold
    g, lfw = data["glint6"], data["lfw57"]
    for d in data.values():
        found = np.concatenate([d.fa[:, 0], d.fb[:, 0]]) > 0
        print(
            f"{d.name}: {len(d.s)} pairs ({int(d.y.sum())} genuine), faces found {found.mean():.3f}"
        )
    study(
        g,
        np.ones(len(g.s), bool),
        [("glint6 (fit)", g, None), ("lfw57 (held out)", lfw, None)],
        t,
        "fitted on glint6 (all conditions), EDC on glint6 and lfw57",
    )
    first = lambda people: np.array([p[0].upper() <= "M" for p in people])  # noqa: E731
    am = first(lfw.person_a) & first(lfw.person_b)
    nz = ~first(lfw.person_a) & ~first(lfw.person_b)
    study(
        lfw,
        am,
        [
            ("lfw57 A-M (fit)", lfw, am),
            ("lfw57 N-Z (held out)", lfw, nz),
            ("glint6 (held out)", g, None),
        ],
        t,
        "fitted on lfw57 people A-M, EDC on lfw57 N-Z and glint6",
    )
    study(
        lfw,
        np.ones(len(lfw.s), bool),
        [("lfw57 (fit, in-sample)", lfw, None)],
        t,
        "ceiling: fitted on lfw57 itself (no longer held out), EDC on lfw57",
    )
    blend_grid([g, lfw], t)
    print("\n== the library's score as a floor (--reject-below): share answered unsure ==")
    header = ["data", "floor", "pairs unsure", "clean pairs unsure", "FNMR of the rest"]
    floors = (0.3, 0.5, 0.8, 0.9)
    print(
        fmt_table(
            [header, *floor_rows("lfw57", lfw, t, floors), *floor_rows("glint6", g, t, floors)]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
