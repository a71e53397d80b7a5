"""A tiny stand-in for faceindex's torch recognisers: the cloak's logic without the real
nets (milliseconds a step), and a numpy embedder of the same net to measure with. (A module
of its own: ``conftest`` is not importable by name once several test folders have one.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceindex.alignment import arcface_points, umeyama  # noqa: E402
from faceindex.embedding import EmbedderSpec, l2_normalise  # noqa: E402
from faceindex.types import Face, FloatArray, ImageArray  # noqa: E402

SIZE = 32
MODEL_ID = "tiny-v1"
SPEC = EmbedderSpec(
    name="tiny",
    model_id=MODEL_ID,
    dim=32,
    input_size=SIZE,
    threshold=0.8,
    target_fmr=1e-3,
    calibration="none: a test stand-in",
    licence="MIT",
)


class TinyNet(torch.nn.Module):  # type: ignore[misc]
    """(N, 3, 32, 32) RGB 0-255 -> (N, 32) L2-normalised, fixed random weights."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.c1 = torch.nn.Conv2d(3, 8, 5, stride=2, padding=2)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(16 * 16, 32)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x: Any) -> Any:
        x = x / 127.5 - 1.0
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.nn.functional.normalize(self.fc(x), dim=1)


def tiny_matrix(face: Face) -> np.ndarray:
    assert face.landmarks is not None
    src, dst = arcface_points(face.landmarks)
    return umeyama(src, dst * (SIZE / 112.0))


@dataclass(frozen=True)
class StandIn:
    """Shaped like :class:`faceindex.cloak.nets.TorchEmbedder`."""

    model_id: str
    size: int
    module: Any
    threshold: float

    def chip_matrix(self, image: ImageArray, face: Face) -> np.ndarray:
        return tiny_matrix(face)


class TinyEmbedder:
    """The same net as an :class:`~faceindex.embedding.Embedder` (cv2 crops, numpy out)."""

    spec = SPEC

    def __init__(self, net: Any) -> None:
        self.net = net

    def warm_up(self) -> None:
        pass

    def embed(self, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        import cv2

        crops = [
            cv2.warpAffine(image, tiny_matrix(f), (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)
            for f in faces
        ]
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            return l2_normalise(self.net(batch).numpy())
