"""Differentiable (PyTorch) copies of faceindex's face recognisers, for the privacy cloak.

Each :class:`TorchEmbedder` pairs a ``torch.nn.Module`` built from the same weights as the
ONNX embedder (:mod:`.dlib_resnet`, :mod:`.sface`) with that embedder's alignment as an
affine matrix (:mod:`.align`), so that the path

    image tensor -> :meth:`TorchEmbedder.chip` (``grid_sample``) -> ``module`` -> embedding

reproduces the ONNX pipeline's embedding while letting gradients reach the photo's pixels.
Measured agreement is in ``tests/integration/test_cloak_nets.py``.

torch is imported only when a model is loaded or a chip is cut, never at import time, and
nothing global (threads, seeds) is set here: the caller decides ``torch.set_num_threads``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from faceindex.cloak.nets.warp import Border, Rounding, affine_theta, warp_to_chip
from faceindex.errors import InvalidInputError, ModelUnavailableError
from faceindex.types import Face, ImageArray

if TYPE_CHECKING:
    import torch

__all__ = [
    "Border",
    "Rounding",
    "TorchEmbedder",
    "affine_theta",
    "image_tensor",
    "load_torch_embedders",
    "warp_to_chip",
]


@dataclass(frozen=True, slots=True)
class TorchEmbedder:
    """One recogniser as a differentiable module plus its alignment.

    ``module`` is in eval mode, float32, with frozen parameters: ``(N, 3, size, size)`` RGB
    in 0..255 -> ``(N, D)`` L2-normalised. ``threshold`` is the calibrated 1:1 cosine
    threshold of the ONNX embedder with the same ``model_id``.
    """

    model_id: str
    size: int
    module: torch.nn.Module
    threshold: float
    #: How the embedder's crop fills pixels outside the photo.
    border: Border = "replicate"
    #: Whether the crop is cut from dlib's image pyramid when the face is over twice the
    #: chip's size (see :func:`warp_to_chip`).
    pyramid: bool = False
    #: How the ONNX path's 8-bit chips round interpolated values (used by ``exact``).
    rounding: Rounding = "round"
    #: ``(image, face) -> matrix``: the embedder's alignment (see :meth:`chip_matrix`).
    aligner: Callable[[ImageArray, Face], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    def chip_matrix(self, image: ImageArray, face: Face) -> np.ndarray:
        """``(2, 3)`` float64 matrix mapping ``image`` pixels to this embedder's chip pixels,
        exactly as its ONNX path crops ``face``."""
        if self.aligner is None:
            raise InvalidInputError(f"{self.model_id} has no aligner")
        return self.aligner(image, face)

    def chip(self, image: torch.Tensor, matrix: np.ndarray, *, exact: bool = False) -> torch.Tensor:
        """The ``(1, 3, size, size)`` chip of ``image`` (``(1, 3, H, W)``, 0..255), cut the
        way this embedder's ONNX path cuts it; differentiable w.r.t. ``image``.

        ``exact``: also round the values as the ONNX path's 8-bit chips do (straight-through,
        so gradients are unchanged); the chip then equals the ONNX path's for an 8-bit photo.
        """
        return warp_to_chip(
            image,
            matrix,
            self.size,
            border=self.border,
            pyramid=self.pyramid,
            rounding=self.rounding if exact else "none",
        )

    def embed(
        self, image: torch.Tensor, matrices: Sequence[np.ndarray], *, exact: bool = False
    ) -> torch.Tensor:
        """``(len(matrices), D)`` embeddings of the faces at ``matrices`` in ``image``
        (``exact``: see :meth:`chip`)."""
        import torch

        if not matrices:
            raise InvalidInputError("embed needs at least one chip matrix")
        chips = torch.cat([self.chip(image, m, exact=exact) for m in matrices])
        out: torch.Tensor = self.module(chips)
        return out


def image_tensor(image: ImageArray) -> torch.Tensor:
    """A ``(H, W, 3)`` uint8 RGB photo as the ``(1, 3, H, W)`` float32 tensor (0..255) that
    :meth:`TorchEmbedder.chip` takes."""
    import torch

    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    array = np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None])
    return torch.from_numpy(array)


def _sface() -> TorchEmbedder:
    from faceindex.cloak.nets.align import arcface_matrix
    from faceindex.cloak.nets.sface import load_sface
    from faceindex.embedding.specs import SFACE

    def align(image: ImageArray, face: Face) -> np.ndarray:
        return arcface_matrix(face, size=SFACE.input_size)

    return TorchEmbedder(
        model_id=SFACE.model_id,
        size=SFACE.input_size,
        module=load_sface(),
        threshold=SFACE.threshold,
        border="replicate",  # arcface_crop's BORDER_REPLICATE
        pyramid=False,  # arcface_crop is one bilinear warp, whatever the face's size
        rounding="round",  # cv2's uint8 warp rounds
        aligner=align,
    )


def _dlib() -> TorchEmbedder:
    from faceindex.cloak.nets.align import dlib_chip_matrix
    from faceindex.cloak.nets.dlib_resnet import load_dlib_resnet
    from faceindex.embedding.dlib_resnet.embedder import DlibResnetEmbedder
    from faceindex.embedding.specs import DLIB_RESNET

    # Only its landmark step is used (dlib's 5-point predictor, loaded on first call);
    # its network is never loaded here.
    shaper = DlibResnetEmbedder()

    def align(image: ImageArray, face: Face) -> np.ndarray:
        return dlib_chip_matrix(shaper.chip_details(image, face))

    return TorchEmbedder(
        model_id=DLIB_RESNET.model_id,
        size=DLIB_RESNET.input_size,
        module=load_dlib_resnet(),
        threshold=DLIB_RESNET.threshold,
        border="dlib",  # black outside the photo, and on its last row and column
        pyramid=True,
        rounding="floor",  # dlib truncates, in its pyramid and in the chip
        aligner=align,
    )


#: model_id -> factory; every embedder faceindex has (fusion is these two, combined).
_FACTORIES: dict[str, Callable[[], TorchEmbedder]] = {
    "dlib-resnet-v1": _dlib,
    "sface-2021dec": _sface,
}
#: Registry names accepted as well as model ids.
_NAMES = {"dlib-resnet": "dlib-resnet-v1", "sface": "sface-2021dec"}
# Loaded once per process: ~40 MB of weights each, and the cloak may be called per request.
_CACHE: dict[str, TorchEmbedder] = {}
_LOCK = threading.Lock()


def load_torch_embedders(model_ids: Sequence[str] | None = None) -> list[TorchEmbedder]:
    """The torch copies of ``model_ids`` (model ids or registry names; default: every
    embedder faceindex has, dlib ResNet then SFace), each loaded once per process."""
    wanted = list(_FACTORIES) if model_ids is None else [_NAMES.get(m, m) for m in model_ids]
    unknown = [m for m in wanted if m not in _FACTORIES]
    if unknown:
        valid = ", ".join([*_FACTORIES, *_NAMES])
        raise InvalidInputError(f"no torch embedder for {', '.join(unknown)}; valid: {valid}")
    try:
        import torch  # noqa: F401  (fail early with a clear message)
    except ImportError as exc:
        raise ModelUnavailableError(
            "the privacy cloak needs PyTorch: pip install 'faceindex[cloak]'", package="torch"
        ) from exc
    out = []
    with _LOCK:
        for model_id in wanted:
            if model_id not in _CACHE:
                _CACHE[model_id] = _FACTORIES[model_id]()
            out.append(_CACHE[model_id])
    return out
