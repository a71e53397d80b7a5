"""Real-world photos: blur, low light, low resolution, compression, occlusion, grey.

Usage: python benchmarks/degradation.py ../shared/dev-data [--cache DIR] [--photos N]
       [--no-peer] [--plot FILE] [--no-restoration] [--no-refinement]

Data: the protocol pair lists ``glint6/pairs.csv`` and ``lfw57/pairs.csv``. For each
dataset a fixed random subset of photos (``--photos``, seed 0) is the *degraded set*; every
pair of the list with a photo of that set is kept, and that one side (``b`` when both
are in the set) is degraded, the other side stays clean. So each condition costs one
embedding per photo of the set, not one per pair. The transforms are
:mod:`faceindex.testing.degrade` (seeded per photo: :func:`~faceindex.testing.degrade.photo_seed`
with base seed 1234); each condition has a moderate and a severe level (occlusions and
grey have one).

Both systems see the same degraded pixels: faceindex (its default pipeline: YuNet, the
fused SFace + dlib embedder, the subject rule, the crop fallback, the landmark refinement
and the restoration of soft and dark faces, which ``--no-refinement`` and
``--no-restoration`` turn off) and the peer,
face_recognition (HOG detector with one upsampling + ResNet, as its README uses it, the
subject picked by the same prominence rule). A photo where a system finds no face
rejects its pairs. Each condition's vectors and face measurements are cached
(``--cache``; files of runs with restoration end in ``-restored``, with landmark
refinement in ``-refined``, and reuse the peer's vectors of the run with neither when
that is cached), so the analysis re-runs in seconds.

It prints, per dataset, condition and severity: EER, TAR at FMR 1e-3, FNMR and FMR at
faceindex's threshold (the peer at its documented 0.6), for both systems; then the
error-versus-reject curve (EDC) of the quality scores over every condition's pairs
pooled; then the measures tried (``--variants``). The figures are quoted in
docs/robustness.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import fmt_table
from faceindex.config import EmbeddingSettings, Settings
from faceindex.detection.subject import most_prominent, prominence
from faceindex.eval import metrics
from faceindex.io.files import person_folders
from faceindex.io.image import load_image
from faceindex.io.pairs import read_pairs
from faceindex.pipeline import Pipeline
from faceindex.quality import assess, quality_score
from faceindex.testing import degrade
from faceindex.types import BBox, Face, ImageArray

SEED = 1234
SUBSET_SEED = 0
PEER_THRESHOLD = 0.6

#: (condition, level, transform(image, face, seed)). ``face`` is the clean photo's subject
#: as faceindex found it (box and landmarks place the occluders and size the shrink).
Transform = Callable[[ImageArray, Face, int], ImageArray]


def _lowres(target_px: float) -> Transform:
    def run(image: ImageArray, face: Face, seed: int) -> ImageArray:
        face_px = min(face.bbox.width, face.bbox.height)
        return degrade.lowres(image, min(1.0, target_px / max(face_px, 1.0)))

    return run


def _occlude(kind: degrade.Occlusion) -> Transform:
    def run(image: ImageArray, face: Face, seed: int) -> ImageArray:
        assert face.landmarks is not None
        return degrade.occlude(image, face.landmarks.points, kind, seed=seed)

    return run


def _motion(length: int) -> Transform:
    def run(image: ImageArray, face: Face, seed: int) -> ImageArray:
        angle = float(np.random.default_rng(seed).uniform(0.0, 180.0))
        return degrade.motion_blur(image, length, angle)

    return run


CONDITIONS: list[tuple[str, str, Transform]] = [
    ("blur-gauss", "sigma 2", lambda im, f, s: degrade.gaussian_blur(im, 2.0)),
    ("blur-gauss", "sigma 4", lambda im, f, s: degrade.gaussian_blur(im, 4.0)),
    ("blur-motion", "9 px", _motion(9)),
    ("blur-motion", "17 px", _motion(17)),
    (
        "dark",
        "g2 x0.5 n6",
        lambda im, f, s: degrade.dark(im, gamma=2.0, gain=0.5, noise=6.0, seed=s),
    ),
    (
        "dark",
        "g2.8 x0.3 n10",
        lambda im, f, s: degrade.dark(im, gamma=2.8, gain=0.3, noise=10.0, seed=s),
    ),
    ("lowres", "40 px", _lowres(40.0)),
    ("lowres", "24 px", _lowres(24.0)),
    ("jpeg", "q20", lambda im, f, s: degrade.jpeg(im, 20)),
    ("jpeg", "q10", lambda im, f, s: degrade.jpeg(im, 10)),
    ("occlude", "mask", _occlude(degrade.Occlusion.MASK)),
    ("occlude", "sunglasses", _occlude(degrade.Occlusion.SUNGLASSES)),
    ("occlude", "hand", _occlude(degrade.Occlusion.HAND)),
    ("grey", "luma", lambda im, f, s: degrade.grey(im)),
]
#: The level the issue's target applies to ("moderate"): the first of each condition.
MODERATE = {"sigma 2", "9 px", "g2 x0.5 n6", "40 px", "q20", "mask", "sunglasses", "hand", "luma"}

#: Face measurements cached per photo (the quality score is recomputed from them).
MEASURES = ("found", "fallback", "det_score", "face_px", "sharpness", "brightness", "yaw", "pitch")


@dataclass
class Side:
    """Embeddings and face measurements of a list of photos under one condition."""

    vectors: np.ndarray  # (n, D) faceindex; nan rows: no face
    peer: np.ndarray  # (n, 128) nan rows: no face
    measures: np.ndarray  # (n, len(MEASURES))

    def quality(self, rule: str = "shipped") -> np.ndarray:
        return quality_of(self.measures, rule)


def quality_of(measures: np.ndarray, rule: str = "shipped") -> np.ndarray:
    """Each row's quality score under ``rule`` (see :data:`RULES`); 0 where no face."""
    fn = RULES[rule]
    m = dict(zip(MEASURES, measures.T, strict=True))
    return np.array(
        [
            fn({k: float(v[i]) for k, v in m.items()}) if m["found"][i] else 0.0
            for i in range(len(measures))
        ]
    )


def _shipped(m: dict[str, float]) -> float:
    return quality_score(
        face_px=m["face_px"],
        sharpness=m["sharpness"],
        brightness=m["brightness"],
        yaw=m["yaw"],
        pitch=m["pitch"],
        detector_score=None if m["fallback"] else m["det_score"],
    )


def _ramp(v: float, lo: float, hi: float) -> float:
    return float(np.clip((v - lo) / (hi - lo), 0.0, 1.0))


def _v1(m: dict[str, float]) -> float:
    """faceindex 0.1's score (before this study): size x sharpness x light x pose ramps."""
    return (
        _ramp(m["face_px"], 20.0, 80.0)
        * _ramp(m["sharpness"], 12.5, 100.0)
        * _ramp(min(m["brightness"], 255.0 - m["brightness"]), 15.0, 60.0)
        * _ramp(67.5 - abs(m["yaw"]), 0.0, 45.0)
        * _ramp(52.5 - abs(m["pitch"]), 0.0, 35.0)
    )


RULES: dict[str, Callable[[dict[str, float]], float]] = {
    "v1": _v1,
    "shipped": _shipped,
}


# ----------------------------------------------------------------------------- embedding


def subject(pipeline: Pipeline, image: ImageArray) -> Face | None:
    faces = pipeline.find_faces(image)
    if not faces:
        return None
    h, w = image.shape[:2]
    return faces[most_prominent(faces, w, h)]


def faceindex_side(
    pipeline: Pipeline, image: ImageArray, prepare: Callable[[ImageArray], ImageArray] | None
) -> tuple[np.ndarray, np.ndarray]:
    from faceindex.pipeline import is_crop_fallback

    if prepare is not None:
        image = prepare(image)
    face = subject(pipeline, image)
    dim = pipeline.embedder.spec.dim
    if face is None:
        return np.full(dim, np.nan), np.zeros(len(MEASURES))
    q = assess(image, face)
    (embedded,) = pipeline.embed_faces(image, [dataclasses.replace(face, quality=q)])
    assert embedded.embedding is not None
    vec = embedded.embedding.vector
    m = [1.0, float(is_crop_fallback(face)), face.score, q.face_px, q.sharpness]
    m += [q.brightness, q.yaw, q.pitch]
    return np.asarray(vec, np.float64), np.array(m)


def peer_side(image: ImageArray) -> np.ndarray:
    import face_recognition as peer

    boxes = peer.face_locations(image)
    if not boxes:
        return np.full(128, np.nan)
    h, w = image.shape[:2]

    def prom(r: tuple[int, int, int, int]) -> float:
        top, right, bottom, left = r
        return prominence(Face(BBox(left, top, right, bottom), 1.0), w, h)

    box = max(boxes, key=prom)
    return np.asarray(peer.face_encodings(image, [box])[0], np.float64)


def embed_side(
    pipeline: Pipeline,
    paths: list[Path],
    root: Path,
    transform: Transform | None,
    clean_faces: list[Face | None] | None,
    use_peer: bool,
    prepare: Callable[[ImageArray], ImageArray] | None = None,
    base: Side | None = None,
) -> Side:
    """Every photo of ``paths``, degraded by ``transform`` (None: clean). With ``prepare``
    (a measure under test), photos it leaves unchanged reuse ``base``'s rows."""
    vecs, peers, meas = [], [], []
    for i, path in enumerate(paths):
        image = load_image(path)
        if transform is not None:
            assert clean_faces is not None
            face = clean_faces[i]
            if face is None:  # faceindex found no clean face: nothing to place a transform on
                face = Face(BBox(0, 0, image.shape[1], image.shape[0]), 0.0)
            seed = degrade.photo_seed(SEED, str(path.relative_to(root)))
            with contextlib.suppress(AssertionError, ValueError):
                image = transform(image, face, seed)  # no landmarks: the photo stays clean
        if prepare is not None and base is not None:
            changed = prepare(image)
            if changed is image:
                vecs.append(base.vectors[i])
                meas.append(base.measures[i])
                peers.append(base.peer[i])
                continue
        v, m = faceindex_side(pipeline, image, prepare)
        vecs.append(v)
        meas.append(m)
        if use_peer and prepare is None:
            peers.append(peer_side(image))
        else:
            peers.append(np.full(128, np.nan) if base is None else base.peer[i])
    return Side(np.array(vecs), np.array(peers), np.array(meas))


def clean_side(pipeline: Pipeline, p: Protocol, use_peer: bool, peer_cache: Path) -> Side:
    """The clean photos; the peer's vectors are taken from ``benchmarks/generalisation.py``'s
    cache when it holds this dataset (same photos, same peer, same subject rule)."""
    file = peer_cache / f"{p.name}.npz"
    if use_peer and file.is_file():
        z = np.load(file)
        if len(z["peer"]) == len(p.paths):
            side = embed_side(pipeline, p.paths, p.root, None, None, False)
            return Side(side.vectors, np.asarray(z["peer"], np.float64), side.measures)
    return embed_side(pipeline, p.paths, p.root, None, None, use_peer)


def cached_side(file: Path, make: Callable[[], Side], use_peer: bool) -> Side:
    if file.is_file():
        z = np.load(file)
        side = Side(z["vectors"], z["peer"], z["measures"])
        peer_done = bool(z["has_peer"]) if "has_peer" in z.files else False
        if not use_peer or peer_done or not np.all(np.isnan(side.peer)):
            return side
    t0 = time.perf_counter()
    side = make()
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        file,
        vectors=side.vectors,
        peer=side.peer,
        measures=side.measures,
        has_peer=np.array(use_peer),
    )
    print(f"  {file.name}: {len(side.vectors)} photos in {time.perf_counter() - t0:.0f} s")
    return side


# --------------------------------------------------------------------------------- pairs


@dataclass
class Protocol:
    name: str
    root: Path
    paths: list[Path]  # every photo of the dataset
    a: np.ndarray  # pair's clean side (index into paths)
    b: np.ndarray  # pair's degraded side (index into ``degraded``)
    same: np.ndarray
    degraded: np.ndarray  # indices into paths of the degraded set


def protocol(name: str, root: Path, n_photos: int) -> Protocol:
    paths = [p for _, photos in person_folders(root) for p in photos]
    where = {p.resolve(): i for i, p in enumerate(paths)}
    pf = read_pairs(root / "pairs.csv", labelled=True)
    pa = np.array([where[pf.resolve(p.a).resolve()] for p in pf.pairs])
    pb = np.array([where[pf.resolve(p.b).resolve()] for p in pf.pairs])
    same = np.array([bool(p.same) for p in pf.pairs])
    used = np.unique(np.concatenate([pa, pb]))
    rng = np.random.default_rng(SUBSET_SEED)
    chosen = np.sort(rng.choice(used, size=min(n_photos, len(used)), replace=False))
    slot = {int(p): k for k, p in enumerate(chosen)}
    a, b, y = [], [], []
    for x, z, s in zip(pa, pb, same, strict=True):
        if int(z) in slot:
            a.append(x), b.append(slot[int(z)]), y.append(s)
        elif int(x) in slot:
            a.append(z), b.append(slot[int(x)]), y.append(s)
    return Protocol(name, root, paths, np.array(a), np.array(b), np.array(y), chosen)


def fi_scores(clean: Side, side: Side, p: Protocol) -> np.ndarray:
    s = np.einsum("ij,ij->i", clean.vectors[p.a], side.vectors[p.b])
    return np.where(np.isfinite(s), s, -np.inf)


def peer_scores(clean: Side, side: Side, p: Protocol) -> np.ndarray:
    d = -np.linalg.norm(clean.peer[p.a] - side.peer[p.b], axis=1)
    return np.where(np.isfinite(d), d, -np.inf)


def summary(s: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float, float]:
    fmr, fnmr = metrics.rates_at(s, y, t)
    return metrics.eer(s, y)[0], metrics.tar_at_fmr(s, y, 1e-3), fnmr, fmr


# ---------------------------------------------------------------------------------- main


#: Mean luma (0-255) of a photo under which :func:`brighten_if_dark` brightens it.
DARK_LUMA = 60.0
#: The mean luma the gamma of :func:`brighten_if_dark` aims for.
TARGET_LUMA = 110.0


def brighten_if_dark(image: ImageArray, *, dark_luma: float = DARK_LUMA) -> ImageArray:
    """The contrast measure tried (and not kept: docs/robustness.md): a dark photo
    brightened for detection and embedding; any other photo returned as is (the same
    object). Dark: mean luma under ``dark_luma``. The gamma that takes the
    mean to :data:`TARGET_LUMA`, then CLAHE (clip 2, 8x8 tiles) on the lightness."""
    import math

    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    mean = float(grey.mean())
    if mean >= dark_luma:
        return image
    gamma = math.log(TARGET_LUMA / 255.0) / math.log(max(mean, 1.0) / 255.0)
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    bright = cv2.LUT(image, lut)
    lab = cv2.cvtColor(bright, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    out: ImageArray = np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), np.uint8)
    return out


VARIANTS: dict[str, Callable[[ImageArray], ImageArray]] = {"enhance-dark": brighten_if_dark}


def edc(
    q: np.ndarray, s: np.ndarray, y: np.ndarray, t: float, shares: tuple[float, ...]
) -> list[tuple[float, float, float, float]]:
    """(share rejected, FNMR at ``t``, FMR at ``t``, EER) over the pairs kept after
    rejecting the lowest-quality ``share`` of all pairs (ties broken by order)."""
    order = np.argsort(q, kind="stable")
    out = []
    for share in shares:
        keep = np.ones(len(q), bool)
        keep[order[: round(share * len(q))]] = False
        fmr, fnmr = metrics.rates_at(s[keep], y[keep], t)
        out.append((share, fnmr, fmr, metrics.eer(s[keep], y[keep])[0]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/faceindex-degradation"))
    ap.add_argument("--photos", type=int, default=100, help="degraded photos per dataset")
    ap.add_argument(
        "--peer-cache",
        type=Path,
        default=Path("/tmp/faceindex-generalisation"),
        help="generalisation.py's cache: the peer's clean vectors are reused from it",
    )
    ap.add_argument("--no-peer", action="store_true", help="skip face_recognition")
    ap.add_argument("--plot", type=Path, default=None, help="write a PNG (default: in --cache)")
    ap.add_argument(
        "--variants", default="enhance-dark", help="measures to try (comma-separated; '' none)"
    )
    ap.add_argument("--datasets", default="glint6,lfw57", help="which (comma-separated)")
    ap.add_argument(
        "--conditions", default="", help="only these conditions (comma-separated; default all)"
    )
    ap.add_argument(
        "--no-restoration",
        action="store_true",
        help="embed every face as it is (faceindex.quality.restore off)",
    )
    ap.add_argument(
        "--no-refinement",
        action="store_true",
        help="align faces from the detector's landmarks (faceindex.detection.refine off)",
    )
    args = ap.parse_args(argv)
    use_peer = not args.no_peer
    restoring = not args.no_restoration
    refining = not args.no_refinement
    embedding = EmbeddingSettings(restoration=restoring, landmark_refinement=refining)
    pipeline = Pipeline.from_settings(Settings(embedding=embedding))
    suffix = ("-restored" if restoring else "") + ("-refined" if refining else "")

    def side_of(stem: str, make: Callable[[bool], Side]) -> Side:
        """``make(with_peer)``, cached as ``stem`` + suffix; with restoration or
        refinement the peer's vectors come from the run with neither when that file has
        them."""
        old = args.cache / f"{stem}.npz"
        if suffix and use_peer and old.is_file():
            z = np.load(old)
            if "has_peer" in z.files and bool(z["has_peer"]):
                own = cached_side(args.cache / f"{stem}{suffix}.npz", lambda: make(False), False)
                return Side(own.vectors, np.asarray(z["peer"]), own.measures)
        return cached_side(args.cache / f"{stem}{suffix}.npz", lambda: make(use_peer), use_peer)

    t = pipeline.threshold
    conditions = [c for c in CONDITIONS if not args.conditions or c[0] in args.conditions]
    variants = [v for v in args.variants.split(",") if v]
    datasets = [
        (n, args.data_dir / n) for n in ("glint6", "lfw57") if n in args.datasets.split(",")
    ]
    header = ["data", "condition", "level", "pairs", "system", "no face", "EER", "TAR@1e-3"]
    rows = [[*header, "FNMR@t", "FMR@t"]]
    results: dict[tuple[str, str, str, str], tuple[float, float, float, float]] = {}
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]]] = {}
    variant_rows = [["data", "condition", "level", "variant", "EER", "TAR@1e-3", "FNMR@t"]]
    for name, root in datasets:
        p = protocol(name, root, args.photos)
        tag = f"{name}-{args.photos}"
        print(
            f"{name}: {len(p.degraded)} photos degraded, {len(p.same)} pairs "
            f"({int(p.same.sum())} genuine); threshold {t:.3f}, peer {PEER_THRESHOLD}"
        )
        clean = side_of(
            f"{name}-clean",
            lambda peer, p=p: clean_side(pipeline, p, peer, args.peer_cache),
        )
        deg_paths = [p.paths[i] for i in p.degraded]
        clean_b = Side(
            clean.vectors[p.degraded], clean.peer[p.degraded], clean.measures[p.degraded]
        )
        clean_faces: list[Face | None] = []
        for path in deg_paths:
            clean_faces.append(subject(pipeline, load_image(path)))
        sides = {("clean", "-"): clean_b}
        for cond, level, fn in conditions:
            key = f"{cond}-{level}".replace(" ", "_")
            sides[(cond, level)] = side_of(
                f"{tag}-{key}",
                lambda peer, fn=fn, p=p, deg_paths=deg_paths, clean_faces=clean_faces: embed_side(
                    pipeline, deg_paths, p.root, fn, clean_faces, peer
                ),
            )
        pooled[name] = []
        for (cond, level), side in sides.items():
            systems = [("faceindex", fi_scores(clean, side, p), t)]
            missed = {"faceindex": int((side.measures[:, 0] == 0).sum())}
            if use_peer:
                systems.append(("face_recognition", peer_scores(clean, side, p), -PEER_THRESHOLD))
                missed["face_recognition"] = int(np.isnan(side.peer[:, 0]).sum())
            for system, s, thr in systems:
                r = summary(s, p.same, thr)
                results[(name, cond, level, system)] = r
                miss = f"{missed[system]}/{len(side.measures)}"
                rows.append(
                    [name, cond, level, str(len(s)), system, miss, *[f"{x:.4f}" for x in r]]
                )
            pooled[name].append(
                (systems[0][1], p.same, clean.measures[p.a], side.measures[p.b], f"{cond}/{level}")
            )
        # Measures under test: the degraded side and the clean side both go through them.
        for variant in variants:
            prepare = VARIANTS[variant]
            clean_v = cached_side(
                args.cache / f"{name}-clean-{variant}{suffix}.npz",
                lambda p=p, prepare=prepare, clean=clean: embed_side(
                    pipeline, p.paths, p.root, None, None, False, prepare, clean
                ),
                False,
            )
            for cond, level, fn in [("clean", "-", None), *conditions]:
                base = sides[(cond, level)]
                if fn is None:
                    side = Side(
                        clean_v.vectors[p.degraded],
                        clean_v.peer[p.degraded],
                        clean_v.measures[p.degraded],
                    )
                else:
                    key = f"{cond}-{level}".replace(" ", "_")
                    side = cached_side(
                        args.cache / f"{tag}-{key}-{variant}{suffix}.npz",
                        functools.partial(
                            embed_side,
                            pipeline,
                            deg_paths,
                            p.root,
                            fn,
                            clean_faces,
                            False,
                            prepare,
                            base,
                        ),
                        False,
                    )
                s = fi_scores(clean_v, side, p)
                r = summary(s, p.same, t)
                b = results[(name, cond, level, "faceindex")]
                variant_rows.append(
                    [
                        name,
                        cond,
                        level,
                        variant,
                        f"{b[0]:.4f} -> {r[0]:.4f}",
                        f"{b[1]:.4f} -> {r[1]:.4f}",
                        f"{b[2]:.4f} -> {r[2]:.4f}",
                    ]
                )
    print("\n== verification under degradation (one side degraded) ==")
    print(fmt_table(rows))
    print("\n== targets at moderate severity: EER <= 2x clean, and below the peer's ==")
    for name, _root in datasets:
        base = results[(name, "clean", "-", "faceindex")][0]
        for cond, level, _fn in conditions:
            if level not in MODERATE:
                continue
            e = results[(name, cond, level, "faceindex")][0]
            pe = results.get((name, cond, level, "face_recognition"), (float("nan"),))[0]
            ok = e <= 2 * max(base, 1e-9) and (not use_peer or e < pe)
            print(
                f"  {name} {cond}/{level}: EER {e:.4f} vs clean {base:.4f} "
                f"(x{e / max(base, 1e-9):.1f}), peer {pe:.4f} {'ok' if ok else 'MISSED'}"
            )
    if variants:
        print("\n== measures tried (faceindex, base -> with the measure) ==")
        print(fmt_table(variant_rows))
    edc_rows = edc_study(pooled, t)
    plot(results, edc_rows, datasets, conditions, args.plot or args.cache / "degradation.png")
    return 0


def edc_study(
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]]],
    t: float,
) -> dict[tuple[str, str], list[tuple[float, float, float, float]]]:
    """Error versus reject per dataset, over every condition's pairs (clean included:
    ``all``) and over the clean and moderate ones (``moderate``). Pair quality = the lower
    of its two faces' quality scores."""
    shares = (0.0, 0.05, 0.1, 0.2, 0.3)
    out = {}
    print("\n== error versus reject (EDC): all conditions pooled, threshold fixed ==")
    rows = [["data", "quality", "rejected", "FNMR@t", "FMR@t", "EER", "FNMR / FNMR(0)"]]
    populations = [
        (f"{name} {label}", [x for x in parts if keep(x[4])])
        for name, all_parts in pooled.items()
        for label, keep in (
            ("all", lambda _lab: True),
            ("moderate", lambda lab: lab == "clean/-" or lab.split("/")[1] in MODERATE),
        )
        for parts in [all_parts]
    ]
    for name, parts in populations:
        s = np.concatenate([x[0] for x in parts])
        y = np.concatenate([x[1] for x in parts])
        for rule in RULES:
            qa = np.concatenate([quality_of(x[2], rule) for x in parts])
            qb = np.concatenate([quality_of(x[3], rule) for x in parts])
            q = np.minimum(qa, qb)
            curve = edc(q, s, y, t, shares)
            out[(name, rule)] = curve
            for share, fnmr, fmr, e in curve:
                rows.append(
                    [
                        name,
                        rule,
                        f"{share:.0%}",
                        f"{fnmr:.4f}",
                        f"{fmr:.4f}",
                        f"{e:.4f}",
                        f"{fnmr / max(curve[0][1], 1e-9):.2f}",
                    ]
                )
    print(fmt_table(rows))
    return out


def plot(results, edc_rows, datasets, conditions, file: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["clean", *[f"{c}\n{lv}" for c, lv, _ in conditions]]
    keys = [("clean", "-"), *[(c, lv) for c, lv, _ in conditions]]
    fig, axes = plt.subplots(len(datasets) + 1, 1, figsize=(13, 4 * (len(datasets) + 1)))
    for ax, (name, _root) in zip(axes, datasets, strict=False):
        x = np.arange(len(keys))
        for k, (system, colour) in enumerate(
            (("faceindex", "tab:blue"), ("face_recognition", "tab:orange"))
        ):
            vals = [results.get((name, c, lv, system), (np.nan,))[0] for c, lv in keys]
            ax.bar(x + (k - 0.5) * 0.4, vals, 0.4, label=system, color=colour)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylabel("EER")
        ax.set_yscale("log")
        ax.set_title(f"{name}: EER with one side of each pair degraded")
        ax.legend()
    ax = axes[-1]
    for (name, rule), curve in edc_rows.items():
        ax.plot([c[0] for c in curve], [c[1] for c in curve], marker="o", label=f"{name} {rule}")
    ax.set_xlabel("share of pairs rejected (lowest pair quality first)")
    ax.set_ylabel("FNMR at the fixed threshold")
    ax.set_title("error versus reject, every condition pooled")
    ax.legend()
    fig.tight_layout()
    file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(file, dpi=90)
    print(f"\nplot: {file}")


if __name__ == "__main__":
    sys.exit(main())
