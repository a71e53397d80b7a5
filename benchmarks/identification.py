"""Open-set identification on glint6: faceindex search rules vs face_recognition nearest neighbour.

Usage: python benchmarks/identification.py DATA_DIR [--enrol 5] [--cache FILE.npz] [--no-peer]

DATA_DIR is the dev-data folder (with glint6/) or the glint6 folder itself.

Protocol: every one of the 15 ways to hold 2 of the 6 people out as unknowns is one fold;
in each, the other 4 people enrol ``--enrol`` photos each (chosen by
``faceindex.eval.protocols.split_gallery`` with the fold number as seed) and their other
photos are mated probes; all 60 photos of each unknown are non-mated probes. Figures are
pooled over the folds (3300 mated and 1800 non-mated searches with 5 templates each), and
one threshold is chosen on the pooled non-mated searches, so FPIR 1e-2 allows 18 false
positives. This is in-sample: the per-fold spread of that threshold is printed as a
stability check.

Columns: rank-1 (closed set, no threshold); FNIR at FPIR=1e-2 with its threshold (the
threshold swept on the pooled searches); FPIR, FNIR and misidentifications (a mated probe
named as someone else) at the system's default threshold.

faceindex: the default pipeline (YuNet + fusion embedder), largest face per photo, the
rules of ``faceindex.search`` (aggregation rule, threshold, margin) replayed exactly by
``faceindex.eval.identification``.

Peer: face_recognition 1.3 as its README uses it: ``face_locations`` (HOG, upsample 1) and
``face_encodings`` of the largest face; the nearest enrolled template by Euclidean
distance names its person unless the distance is above the 0.6 tolerance (similarity =
minus the distance, so this is the "max" rule with threshold -0.6 and no margin). A photo
where it finds no face is a failure: a mated probe is then a miss, a non-mated probe a
correct rejection, and an enrolment photo adds no template.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import fmt_table
from faceindex.errors import FaceIndexError
from faceindex.eval import metrics
from faceindex.eval.identification import (
    SearchOutcomes,
    decision_scores,
    named,
    search_outcomes,
)
from faceindex.eval.protocols import list_people, split_gallery
from faceindex.pipeline import Pipeline
from faceindex.search import AggregationRule

Vectors = dict[str, np.ndarray | None]
Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cosine(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return p @ t.T


def minus_euclidean(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return -np.sqrt(np.maximum(((p[:, None, :] - t[None, :, :]) ** 2).sum(-1), 0.0))


def embed_folder(
    photos: list[str], root: Path, embed: Callable[[Path], np.ndarray | None]
) -> Vectors:
    out: Vectors = {}
    for name in photos:
        out[name] = embed(root / name)
    return out


@dataclass
class Pooled:
    """Decision scores and counts pooled over folds, for one system and setting."""

    rank1_hits: int = 0
    n_mated: int = 0
    n_nonmated: int = 0
    fp: int = 0
    fn: int = 0
    misid: int = 0
    scores: list[np.ndarray] | None = None
    mated: list[np.ndarray] | None = None
    fold_thresholds: list[float] | None = None

    def add(self, o: SearchOutcomes, threshold: float, margin: float) -> None:
        who = named(o, threshold=threshold, margin=margin)
        truth = o.true_person
        self.rank1_hits += int((o.mate_rank[o.mated] == 1).sum())
        self.n_mated += int(o.mated.sum())
        self.n_nonmated += int((~o.mated).sum())
        self.fp += int(((~o.mated) & (who >= 0)).sum())
        self.fn += int((o.mated & ~((who >= 0) & (who == truth))).sum())
        self.misid += int((o.mated & (who >= 0) & (who != truth)).sum())
        d = decision_scores(o, margin=margin)
        self.scores = [*(self.scores or []), d]
        self.mated = [*(self.mated or []), o.mated.copy()]
        fold_thr = metrics.threshold_at_fmr(d, o.mated, 1e-2)
        self.fold_thresholds = [*(self.fold_thresholds or []), fold_thr]

    def at_fpir(self, target: float) -> tuple[float, float, float]:
        """(FNIR, threshold, achieved FPIR) at the pooled threshold for ``target``."""
        d = np.concatenate(self.scores or [])
        m = np.concatenate(self.mated or [])
        thr = metrics.threshold_at_fmr(d, m, target)
        accepted = np.isfinite(d) & (d >= thr)
        return float((~accepted[m]).mean()), thr, float(accepted[~m].mean())

    def row(self, name: str) -> list[str]:
        fnir, thr, _ = self.at_fpir(1e-2)
        return [
            name,
            f"{self.rank1_hits / self.n_mated:.4f}",
            f"{fnir:.4f}",
            f"{thr:.3f}",
            f"{self.fp / self.n_nonmated:.4f}",
            f"{self.fn / self.n_mated:.4f}",
            f"{self.misid / self.n_mated:.4f}",
        ]


def run_folds(
    people: dict[str, list[str]],
    vectors: Vectors,
    similarity: Similarity,
    *,
    enrol: int,
    rule: AggregationRule,
    threshold: float,
    margin: float,
    seed_offset: int = 0,
) -> Pooled:
    pooled = Pooled()
    dim = next(v.shape[0] for v in vectors.values() if v is not None)
    for fold, unknown in enumerate(itertools.combinations(sorted(people), 2)):
        split = split_gallery(
            people, enrol_per_person=enrol, seed=seed_offset + fold, unknown_people=unknown
        )
        owners = [p for p, f in split.enrol if vectors[f] is not None]
        t = np.array([vectors[f] for _, f in split.enrol if vectors[f] is not None]).reshape(
            -1, dim
        )
        labels = [p for p, _ in split.probes]
        failed = np.array([vectors[f] is None for _, f in split.probes])
        p = np.array([np.zeros(dim) if vectors[f] is None else vectors[f] for _, f in split.probes])
        sims = similarity(p, t)
        o = search_outcomes(sims, labels, owners, rule=rule, failed=failed, enrolled=split.enrolled)
        pooled.add(o, threshold, margin)
    return pooled


def load_or_embed(
    cache: Path | None,
    key: str,
    photos: list[str],
    root: Path,
    embed: Callable[[Path], np.ndarray | None],
) -> tuple[Vectors, float]:
    if cache is not None:
        path = cache.with_name(f"{cache.stem}-{key}.npz")
        if path.is_file():
            data = np.load(path)
            return {n: (data[n] if n in data.files else None) for n in photos}, float("nan")
    t0 = time.perf_counter()
    vectors = embed_folder(photos, root, embed)
    per_photo = (time.perf_counter() - t0) / max(len(photos), 1)
    if cache is not None:
        np.savez(path, **{n: v for n, v in vectors.items() if v is not None})
    return vectors, per_photo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--enrol", type=int, default=5, help="templates per enrolled person")
    ap.add_argument("--cache", type=Path, help="reuse embeddings saved next to this path")
    ap.add_argument("--no-peer", action="store_true", help="skip face_recognition")
    ap.add_argument("--repeats", type=int, default=10, help="photo splits for the rule check")
    args = ap.parse_args(argv)

    root = args.data_dir / "glint6" if (args.data_dir / "glint6").is_dir() else args.data_dir
    people = list_people(root)
    photos = [f for files in people.values() for f in files]
    print(f"{root}: {len(people)} people, {len(photos)} photos; 15 folds of 4 enrolled + 2 unknown")

    pipeline = Pipeline.from_settings()
    pipeline.warm_up()

    def fi_embed(path: Path) -> np.ndarray | None:
        try:
            emb = pipeline.subject_face(path).embedding
        except FaceIndexError:
            return None
        return None if emb is None else np.asarray(emb.vector, dtype=np.float64)

    fi_vecs, fi_t = load_or_embed(args.cache, "faceindex", photos, root, fi_embed)
    systems: list[tuple[str, Vectors, float]] = [("faceindex", fi_vecs, fi_t)]
    if not args.no_peer:
        import face_recognition as fr

        def fr_embed(path: Path) -> np.ndarray | None:
            image = fr.load_image_file(str(path))
            locations = fr.face_locations(image)
            if not locations:
                return None
            top, right, bottom, left = max(locations, key=lambda r: (r[2] - r[0]) * (r[1] - r[3]))
            return np.asarray(fr.face_encodings(image, [(top, right, bottom, left)])[0])

        fr_vecs, fr_t = load_or_embed(args.cache, "face_recognition", photos, root, fr_embed)
        systems.append(("face_recognition", fr_vecs, fr_t))
    for name, vecs, t in systems:
        fails = sum(v is None for v in vecs.values())
        timing = "cached" if np.isnan(t) else f"{t * 1000:.0f} ms/photo"
        print(f"{name}: {fails} of {len(vecs)} photos without a face ({timing})")

    thr = pipeline.threshold
    header = ["system", "rank-1", "FNIR@FPIR1e-2", "thr@1e-2", "FPIR@def", "FNIR@def", "misid@def"]

    print(f"\n== side by side: {args.enrol} templates per person ==")
    rows = [header]
    best: dict[str, Pooled] = {}
    for rule in AggregationRule:
        pooled = run_folds(
            people, fi_vecs, cosine, enrol=args.enrol, rule=rule, threshold=thr, margin=0.0
        )
        best[str(rule)] = pooled
        rows.append(pooled.row(f"faceindex {rule} (thr {thr:.3f})"))
    if not args.no_peer:
        peer = run_folds(
            people,
            systems[1][1],
            minus_euclidean,
            enrol=args.enrol,
            rule=AggregationRule.MAX,
            threshold=-0.6,
            margin=0.0,
        )
        rows.append(peer.row("face_recognition NN (dist 0.6)"))
        # Like for like: only the photos in which the peer found a face.
        seen = {
            p: [f for f in files if systems[1][1][f] is not None] for p, files in people.items()
        }
        for rule in AggregationRule:
            pooled = run_folds(
                seen, fi_vecs, cosine, enrol=args.enrol, rule=rule, threshold=thr, margin=0.0
            )
            rows.append(pooled.row(f"  faceindex {rule}, peer-detected photos"))
        peer_seen = run_folds(
            seen,
            systems[1][1],
            minus_euclidean,
            enrol=args.enrol,
            rule=AggregationRule.MAX,
            threshold=-0.6,
            margin=0.0,
        )
        rows.append(peer_seen.row("  face_recognition, peer-detected photos"))
    print(fmt_table(rows))
    if not args.no_peer:
        print("(peer thresholds are minus a Euclidean distance)")

    print("\n== aggregation rule x templates per person (faceindex, margin 0) ==")
    rows = [header]
    for enrol in (1, 2, 3, 5, 10, 20):
        for rule in AggregationRule:
            pooled = run_folds(
                people, fi_vecs, cosine, enrol=enrol, rule=rule, threshold=thr, margin=0.0
            )
            rows.append(pooled.row(f"{rule}, {enrol} templates"))
    print(fmt_table(rows))

    print(f"\n== margin (faceindex, {args.enrol} templates) ==")
    rows = [header]
    for rule in AggregationRule:
        for margin in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12):
            pooled = run_folds(
                people, fi_vecs, cosine, enrol=args.enrol, rule=rule, threshold=thr, margin=margin
            )
            rows.append(pooled.row(f"{rule}, margin {margin:.2f}"))
    print(fmt_table(rows))

    print(f"\n== rule check over {args.repeats} photo splits ({args.enrol} templates, margin 0) ==")
    fnirs: dict[str, list[float]] = {str(r): [] for r in AggregationRule}
    thrs: dict[str, list[float]] = {str(r): [] for r in AggregationRule}
    for rep in range(args.repeats):
        for rule in AggregationRule:
            pooled = run_folds(
                people,
                fi_vecs,
                cosine,
                enrol=args.enrol,
                rule=rule,
                threshold=thr,
                margin=0.0,
                seed_offset=1000 * (rep + 1),
            )
            fnir, fold_thr, _ = pooled.at_fpir(1e-2)
            fnirs[str(rule)].append(fnir)
            thrs[str(rule)].append(fold_thr)
    for rule_name, values in fnirs.items():
        print(
            f"{rule_name}: FNIR@FPIR1e-2 median {statistics.median(values):.4f} "
            f"(min {min(values):.4f}, max {max(values):.4f}); threshold median "
            f"{statistics.median(thrs[rule_name]):.3f} (min {min(thrs[rule_name]):.3f}, "
            f"max {max(thrs[rule_name]):.3f})"
        )
    wins = sum(t < m for m, t in zip(fnirs["max"], fnirs["mean-top2"], strict=True))
    print(f"mean-top2 lower than max in {wins} of {args.repeats} splits")

    print("\n== threshold for FPIR 1e-2 (pooled, and spread of per-fold thresholds) ==")
    for rule, pooled in best.items():
        fnir, pooled_thr, fpir = pooled.at_fpir(1e-2)
        folds = pooled.fold_thresholds or []
        print(
            f"{rule}: pooled {pooled_thr:.3f} (FPIR {fpir:.4f}, FNIR {fnir:.4f}); per fold "
            f"median {statistics.median(folds):.3f}, min {min(folds):.3f}, max {max(folds):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
