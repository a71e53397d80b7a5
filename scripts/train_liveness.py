"""Train the shipped ``colour-texture`` liveness model.

    python scripts/train_liveness.py ../shared/dev-data/nuaa-dev \
        [--out src/faceindex/liveness/colour_texture_v1.npz] [--l2 1.0]

DATA_DIR holds ``labels.csv`` (``path,label,subject``; label ``live`` or ``attack``) and
the photos. Each photo's largest face is found by the project's detector (YuNet, as
``faceindex detect`` finds it); photos without a face are left out and counted. The model
is fitted on every subject; its calibration and default threshold come from
leave-one-subject-out scores over the same subjects (``faceindex.liveness.training``), so
nothing is tuned on a face scored by a model that saw its subject. The JSON header of the
``.npz`` records the feature spec, the data (file count, subjects, sha256 of labels.csv)
and those out-of-subject figures. Deterministic: the same data gives the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from faceindex.liveness.dataset import read_labels
from faceindex.liveness.metrics import pad_report
from faceindex.liveness.training import (
    DEFAULT_L2,
    DEFAULT_SPEC,
    featurise,
    out_of_subject_scores,
    train,
)
from faceindex.pipeline import Pipeline
from faceindex.types import Face, ImageArray

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/faceindex/liveness/colour_texture_v1.npz"


def detect_all(paths: list[Path]) -> tuple[list[ImageArray | None], list[Face | None]]:
    pipeline = Pipeline.from_settings()
    images: list[ImageArray | None] = []
    faces: list[Face | None] = []
    for path in paths:
        image = pipeline.load(path)
        found = pipeline.detector.detect(image)
        images.append(image if found else None)
        faces.append(found[0] if found else None)
    return images, faces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--l2", type=float, default=DEFAULT_L2)
    args = parser.parse_args(argv)

    photos = read_labels(args.data_dir)
    start = time.perf_counter()
    images, faces = detect_all([p.path for p in photos])
    keep = np.array([f is not None for f in faces])
    print(
        f"{len(photos)} photos, {int((~keep).sum())} without a face "
        f"({time.perf_counter() - start:.1f} s to detect)",
        file=sys.stderr,
    )
    x_all, _ = featurise(images, faces, DEFAULT_SPEC)
    x = x_all[keep]
    live = np.array([p.live for p in photos])[keep]
    subjects = np.array([p.subject for p in photos])[keep]

    model = train(x, live, subjects, l2=args.l2, spec=DEFAULT_SPEC)
    raw = out_of_subject_scores(x, live.astype(float), subjects, l2=args.l2)
    oof = 1.0 / (1.0 + np.exp(-np.clip(model.platt_a * raw + model.platt_b, -500, 500)))
    report = pad_report(oof, live, model.threshold)
    labels_sha = hashlib.sha256((args.data_dir / "labels.csv").read_bytes()).hexdigest()
    model = model.with_meta(
        name="colour-texture-v1",
        trained_by="scripts/train_liveness.py",
        data={
            "name": args.data_dir.name,
            "source": "NUAA Photograph Imposter Database (research use), dev subset",
            "labels_sha256": labels_sha,
            "live": int(live.sum()),
            "attack": int((~live).sum()),
            "subjects": sorted(set(subjects.tolist())),
            "skipped_no_face": int((~keep).sum()),
        },
        out_of_subject=report.as_dict(),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes): threshold "
        f"{model.threshold:.4f}, Platt a={model.platt_a:.4f} b={model.platt_b:.4f}, "
        f"atypical limit {model.meta['atypical_limit']}, "
        f"sharpness floor {model.meta['min_sharpness']}",
        file=sys.stderr,
    )
    print("out-of-subject (calibration data):", report.as_dict(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
