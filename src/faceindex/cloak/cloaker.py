"""The cloak's front door: :class:`Cloaker` finds every face, cloaks it, saves, measures.

It works with any set of differentiable recognisers that look like
:class:`AttackModel` (faceindex's are the torch copies of :mod:`faceindex.cloak.nets`,
loaded on first use), and measures the result with faceindex's own ONNX embedders of the
same model ids (any :class:`~faceindex.embedding.Embedder`), on the saved file decoded
again, so the figures describe the file a user shares.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from faceindex.cloak.budget import Budget, Strength, budget_for
from faceindex.cloak.files import DEFAULT_QUALITY, Metadata, encode, output_format, read_metadata
from faceindex.cloak.metrics import face_window, psnr, ssim
from faceindex.cloak.region import face_region
from faceindex.cloak.report import CloakedFace, CloakReport
from faceindex.errors import ConfigError, ImageDecodeError, InvalidInputError
from faceindex.io.image import ImageLimits, load_image
from faceindex.types import Face, ImageArray

if TYPE_CHECKING:
    from faceindex.config import Settings
    from faceindex.embedding import Embedder
    from faceindex.pipeline import Pipeline

log = logging.getLogger(__name__)

#: ``progress(done, total)``: attack steps done of all the photo's steps.
ProgressFn = Callable[[int, int], None]
#: A re-detected face matches a clean one when their boxes overlap at least this much.
MATCH_IOU = 0.3
INSTALL_HINT = "pip install 'faceindex[cloak]'"


class AttackModel(Protocol):
    """A differentiable recogniser (:class:`faceindex.cloak.nets.TorchEmbedder`)."""

    @property
    def model_id(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def module(self) -> Any: ...
    @property
    def threshold(self) -> float: ...
    def chip_matrix(self, image: ImageArray, face: Face) -> np.ndarray: ...


def require_torch() -> None:
    """:class:`ConfigError` naming the extra to install when PyTorch is missing."""
    _passive_openmp()
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"the privacy cloak needs PyTorch, which is not installed: {INSTALL_HINT}",
            extra="cloak",
        ) from exc


def _passive_openmp() -> None:
    """Let torch's OpenMP threads sleep when idle (unless the user chose otherwise).

    Must run before torch is first imported. With OpenMP's default active wait, torch's two
    threads spin between the many small ops of a cloak step and compete with ONNX Runtime's
    threads and with anything else on the machine: on the 2-core machine under load a
    forward and backward pass took 10-20x longer (cloak/nets/timing.py measurements).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _onnx_embedder(model_id: str, *, threads: int | None, cache_dir: Path | None) -> Embedder:
    """faceindex's registered embedder whose spec has ``model_id``."""
    from faceindex.embedding import EMBEDDERS

    for name in EMBEDDERS.names():
        factory = EMBEDDERS.get(name)
        spec = getattr(factory, "spec", None)
        if spec is not None and spec.model_id == model_id:
            embedder: Embedder = factory(threads=threads, flip=False, cache_dir=cache_dir)
            return embedder
    raise ConfigError(f"no registered embedder has model id {model_id!r}", model_id=model_id)


class Cloaker:
    """Cloaks photos with the pipeline's detector; see the module docstring.

    ``models``: the recognisers to attack (default: every torch copy of
    :mod:`faceindex.cloak.nets`); ``measure``: the embedders that report the result
    (default: faceindex's ONNX embedder of each model's id). Both load on first use,
    under a lock; construction is cheap and imports no torch.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        models: Sequence[AttackModel] | None = None,
        measure: Sequence[Embedder] | None = None,
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.pipeline = pipeline
        self._models = list(models) if models is not None else None
        self._measure = list(measure) if measure is not None else None
        self._threads, self._cache_dir = threads, cache_dir
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, pipeline: Pipeline | None = None) -> Cloaker:
        from faceindex.pipeline import Pipeline

        cache = settings.runtime.cache_dir
        return cls(
            pipeline or Pipeline.from_settings(settings),
            threads=settings.runtime.threads,
            cache_dir=Path(cache).expanduser() if cache else None,
        )

    # -- models ---------------------------------------------------------------------------

    def models(self) -> list[AttackModel]:
        with self._lock:
            if self._models is None:
                require_torch()
                from faceindex.cloak.nets import load_torch_embedders

                loaded: list[AttackModel] = list(load_torch_embedders())
                for m in loaded:
                    m.module.eval()
                    for p in m.module.parameters():
                        p.requires_grad_(False)
                self._models = loaded
            return self._models

    def measurers(self) -> list[Embedder]:
        models = self.models()
        with self._lock:
            if self._measure is None:
                self._measure = [
                    _onnx_embedder(m.model_id, threads=self._threads, cache_dir=self._cache_dir)
                    for m in models
                ]
            return self._measure

    def warm_up(self) -> None:
        self.models()
        for embedder in self.measurers():
            embedder.warm_up()

    # -- cloaking -------------------------------------------------------------------------

    def faces(self, image: ImageArray, label: str) -> tuple[Face, ...]:
        """Every face of the photo, or :class:`~faceindex.errors.NoFaceError`."""
        faces = self.pipeline.find_faces(image)
        if not faces:
            raise self.pipeline.no_face_error(image, label)
        return faces

    def cloak_image(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        *,
        budget: Budget,
        seed: int = 0,
        progress: ProgressFn | None = None,
    ) -> ImageArray:
        """``image`` with every one of ``faces`` cloaked (a new array; pixels outside the
        faces' regions are the input's, bit for bit). Deterministic for a ``seed``."""
        from faceindex.cloak.attack import Crop, perturb

        models = self.models()
        out = np.array(image, dtype=np.uint8, copy=True)
        height, width = image.shape[:2]
        total = budget.steps * len(faces)
        for i, face in enumerate(faces):
            matrices = [np.asarray(m.chip_matrix(image, face), np.float64) for m in models]
            region = face_region(
                [(mx, m.size) for mx, m in zip(matrices, models, strict=True)],
                width=width,
                height=height,
            )
            crops = [
                Crop(m.module, m.size, float(m.threshold), region.local(mx))
                for mx, m in zip(matrices, models, strict=True)
            ]
            done = budget.steps * i

            def step(k: int, _n: int, done: int = done) -> None:
                if progress is not None:
                    progress(done + k, total)

            patch = out[region.y0 : region.y1, region.x0 : region.x1]
            out[region.y0 : region.y1, region.x0 : region.x1] = perturb(
                patch, region.mask, crops, budget, seed=seed * 1_000_003 + i, progress=step
            )
        return out

    def cloak_bytes(
        self,
        data: bytes,
        fmt: str,
        *,
        strength: Strength | str = Strength.MEDIUM,
        seed: int = 0,
        quality: int = DEFAULT_QUALITY,
        label: str = "<bytes>",
        out_label: str = "",
        progress: ProgressFn | None = None,
        limits: ImageLimits | None = None,
        max_faces: int | None = None,
    ) -> tuple[bytes, CloakReport]:
        """A photo's bytes cloaked and encoded as ``fmt``, with the report.

        ``limits``: the decoder's (default: the pipeline's); ``max_faces``: refuse a photo
        with more faces (:class:`~faceindex.errors.InvalidInputError`) before any work."""
        budget = budget_for(strength)
        image = load_image(data, limits=limits or self.pipeline.limits, name=label)
        faces = self.faces(image, label)
        if max_faces is not None and len(faces) > max_faces:
            raise InvalidInputError(
                f"{label}: {len(faces)} faces; at most {max_faces} are cloaked a photo here",
                faces=len(faces),
                max_faces=max_faces,
            )
        meta = read_metadata(data)
        started, cpu = time.perf_counter(), time.process_time()
        cloaked = self.cloak_image(image, faces, budget=budget, seed=seed, progress=progress)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        encoded = encode(cloaked, fmt, quality=quality, meta=meta)
        report = self.measure(
            image,
            faces,
            encoded,
            fmt,
            quality=quality,
            meta=meta,
            path=label,
            out=out_label,
            strength=str(Strength(strength)),
            seconds=seconds,
        )
        return encoded, dataclasses.replace(report, cpu_seconds=cpu)

    def cloak_file(
        self,
        src: str | Path,
        dst: str | Path,
        *,
        strength: Strength | str = Strength.MEDIUM,
        seed: int = 0,
        quality: int = DEFAULT_QUALITY,
        progress: ProgressFn | None = None,
    ) -> CloakReport:
        """Cloak the photo ``src`` into ``dst`` (format from its suffix); the report."""
        from faceindex.cloak.files import write_atomically

        fmt = output_format(dst)
        source = Path(src)
        image_data = _read(source, self.pipeline.limits)
        encoded, report = self.cloak_bytes(
            image_data,
            fmt,
            strength=strength,
            seed=seed,
            quality=quality,
            label=str(src),
            out_label=str(dst),
            progress=progress,
        )
        write_atomically(Path(dst), encoded)
        return report

    # -- measuring ------------------------------------------------------------------------

    def measure(
        self,
        clean: ImageArray,
        faces: Sequence[Face],
        encoded: bytes,
        fmt: str,
        *,
        quality: int = DEFAULT_QUALITY,
        meta: Metadata | None = None,
        path: str = "",
        out: str = "",
        strength: str = "",
        seconds: float = 0.0,
    ) -> CloakReport:
        """The report of a cloaked photo ``encoded`` against its ``clean`` original."""
        after = load_image(encoded, limits=self.pipeline.limits, name=out or "<cloaked>")
        before = load_image(
            encode(clean, fmt, quality=quality, meta=meta),
            limits=self.pipeline.limits,
            name="<clean>",
        )
        embedders = self.measurers()
        clean_vecs = [e.embed(clean, faces) for e in embedders]
        sims_after = self._similarities(after, faces, embedders, clean_vecs)
        sims_before = self._similarities(before, faces, embedders, clean_vecs)
        height, width = clean.shape[:2]
        records = []
        for i, face in enumerate(faces):
            rows, cols = face_window(face.bbox, width, height)
            ids = [e.spec.model_id for e in embedders]
            records.append(
                CloakedFace(
                    bbox=face.bbox,
                    similarity_before=dict(zip(ids, sims_before[i], strict=True)),
                    similarity_after=dict(zip(ids, sims_after[i], strict=True)),
                    psnr=psnr(clean[rows, cols], after[rows, cols]),
                    ssim=ssim(clean[rows, cols], after[rows, cols]),
                    thresholds={e.spec.model_id: e.spec.threshold for e in embedders},
                )
            )
        return CloakReport(
            path=path,
            out=out,
            faces=tuple(records),
            psnr=psnr(clean, after),
            ssim=ssim(clean, after),
            strength=strength,
            seconds=seconds,
        )

    def _similarities(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        embedders: Sequence[Embedder],
        clean_vecs: Sequence[np.ndarray],
    ) -> list[list[float]]:
        """Per face, per embedder: cosine of the clean face and the same face in
        ``image``, found again by the detector (a recogniser would not be handed the
        clean photo's landmarks); where the detector no longer finds it, the clean
        landmarks are used, the case least favourable to the cloak."""
        found = self.pipeline.find_faces(image)
        matched = [_match(face, found) for face in faces]
        out = [[0.0] * len(embedders) for _ in faces]
        for j, embedder in enumerate(embedders):
            vecs = embedder.embed(image, matched)
            for i in range(len(faces)):
                out[i][j] = float(np.clip(np.dot(vecs[i], clean_vecs[j][i]), -1.0, 1.0))
        return out


def _match(face: Face, found: Sequence[Face]) -> Face:
    best = max(found, key=lambda f: f.bbox.iou(face.bbox), default=None)
    if best is not None and best.bbox.iou(face.bbox) >= MATCH_IOU:
        return best
    return dataclasses.replace(face, embedding=None, quality=None)


def _read(path: Path, limits: ImageLimits) -> bytes:
    """A photo's bytes; a missing, odd or oversized file raises :func:`load_image`'s error."""
    if not path.is_file() or path.stat().st_size > limits.max_bytes:
        load_image(path, limits=limits)  # raises: not found, a folder, too large
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"{path}: cannot read file ({exc})", path=str(path)) from exc
