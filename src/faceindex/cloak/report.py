"""What a cloak did to each face: how alike the recognisers still find it, how visible it is."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faceindex.types import BBox


def _round(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class CloakedFace:
    """One face of a cloaked photo.

    ``similarity_before`` and ``similarity_after`` map each model id to the cosine
    similarity between the face in the clean photo and the same face re-detected in a
    photo decoded from a file: for *before*, the clean photo saved as the output is
    saved (so its figure is what the file format alone costs, 1.0 for PNG); for *after*,
    the cloaked output file itself. Both are measured with faceindex's own (ONNX)
    recognisers, not the torch copies the cloak was computed with. ``psnr`` (dB) and
    ``ssim`` compare the output with the clean photo around the face (its box grown by a
    fifth on each side).
    """

    bbox: BBox
    similarity_before: Mapping[str, float]
    similarity_after: Mapping[str, float]
    psnr: float
    ssim: float
    #: Each model's calibrated 1:1 threshold: below it, the face no longer matches.
    thresholds: Mapping[str, float] = field(default_factory=dict)

    @property
    def protected_from(self) -> tuple[str, ...]:
        """The models under whose threshold the cloaked face fell."""
        return tuple(m for m, t in self.thresholds.items() if self.similarity_after.get(m, 1.0) < t)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bbox": self.bbox.as_list(),
            "similarity_before": {m: round(s, 4) for m, s in self.similarity_before.items()},
            "similarity_after": {m: round(s, 4) for m, s in self.similarity_after.items()},
            "psnr": _round(self.psnr, 2),
            "ssim": _round(self.ssim, 4),
        }


@dataclass(frozen=True, slots=True)
class CloakReport:
    """One cloaked photo: where from, where to, each face, the whole photo's PSNR/SSIM."""

    path: str
    out: str
    faces: tuple[CloakedFace, ...]
    psnr: float
    ssim: float
    strength: str
    #: Seconds the attack took (not counting decoding, saving and measuring).
    seconds: float
    #: CPU seconds the process spent on the attack (all threads): what the attack costs
    #: whatever else the machine was doing.
    cpu_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON contract: ``{"path", "out", "faces": [...]}``."""
        return {"path": self.path, "out": self.out, "faces": [f.as_dict() for f in self.faces]}
