"""Colour-texture features of a face for presentation-attack detection (numpy + OpenCV).

A printed photo or a screen held to a camera is re-imaged: its colours are squeezed into
the printer's or screen's gamut, its fine texture is the paper's grain or the screen's
pixel grid rather than skin, and it is usually a little blurred. Uniform local binary
patterns (Ojala et al. 2002) of the chroma channels catch these differences (Boulkenafet
et al., "Face anti-spoofing based on color texture analysis", ICIP 2015). Everything here
is a pure function of an RGB ``uint8`` array, so it is tested on synthetic arrays.

- :func:`face_crop`: the face warped upright onto a square crop with a margin around it
  (five landmarks -> similarity transform), or a square around the box without landmarks.
- :func:`uniform_lbp_histogram`: the 59-bin uniform LBP histogram (P=8 neighbours on a
  circle of radius R, bilinear sampling) of one channel.
- :func:`colour_texture_features`: the feature vector of a crop for a :class:`FeatureSpec`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceindex.alignment import arcface_points, umeyama
from faceindex.types import Face, FloatArray, ImageArray

#: Bins of a uniform LBP histogram with 8 neighbours: 58 uniform patterns + 1 for the rest.
LBP_BINS = 59
_NEIGHBOURS = 8


def _uniform_table() -> np.ndarray:
    """Code (0-255) -> bin: each pattern with at most two 0/1 transitions around the circle
    gets its own bin (58 of them, in code order), every other pattern bin 58."""
    table = np.full(256, LBP_BINS - 1, dtype=np.int64)
    label = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(_NEIGHBOURS)]
        transitions = sum(bits[i] != bits[(i + 1) % _NEIGHBOURS] for i in range(_NEIGHBOURS))
        if transitions <= 2:
            table[code] = label
            label += 1
    return table


_UNIFORM = _uniform_table()


def lbp_codes(channel: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """The 8-bit LBP code of every pixel at least ``ceil(radius)`` from the border.

    Neighbour ``k`` sits at angle ``2*pi*k/8`` on a circle of ``radius`` pixels and is
    sampled bilinearly; bit ``k`` is set where it is ``>=`` the centre (the usual rule, so
    a flat region is all ones: code 255).
    """
    x = np.asarray(channel, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"channel must be 2-D (H, W), got shape {x.shape}")
    pad = int(np.ceil(radius))
    h, w = x.shape
    if h <= 2 * pad or w <= 2 * pad:
        raise ValueError(f"channel {x.shape} is too small for LBP radius {radius}")
    centre = x[pad : h - pad, pad : w - pad]
    codes = np.zeros(centre.shape, dtype=np.int64)
    for k in range(_NEIGHBOURS):
        angle = 2.0 * np.pi * k / _NEIGHBOURS
        dy, dx = -radius * np.sin(angle), radius * np.cos(angle)
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0
        if abs(fy) < 1e-6:
            fy = 0.0
        if abs(fx) < 1e-6:
            fx = 0.0

        def shifted(oy: int, ox: int) -> np.ndarray:
            return x[pad + oy : h - pad + oy, pad + ox : w - pad + ox]

        value = (1 - fy) * (1 - fx) * shifted(y0, x0)
        if fx:
            value = value + (1 - fy) * fx * shifted(y0, x0 + 1)
        if fy:
            value = value + fy * (1 - fx) * shifted(y0 + 1, x0)
        if fx and fy:
            value = value + fy * fx * shifted(y0 + 1, x0 + 1)
        codes |= (value >= centre - 1e-4).astype(np.int64) << k
    return codes


def uniform_lbp_histogram(channel: np.ndarray, radius: float = 1.0) -> FloatArray:
    """The normalised (sums to 1) 59-bin uniform LBP histogram of one channel."""
    bins = _UNIFORM[lbp_codes(channel, radius)]
    hist = np.bincount(bins.ravel(), minlength=LBP_BINS).astype(np.float32)
    total = float(hist.sum())
    out: FloatArray = hist / total if total else hist
    return out


def colour_channels(rgb: ImageArray) -> np.ndarray:
    """``(H, W, 6)`` float32: HSV (OpenCV's 0-180 hue, 0-255 S, V) then YCbCr (Y, Cb, Cr)."""
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB crop, got {rgb.shape} {rgb.dtype}")
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]]  # -> Y, Cb, Cr
    return np.concatenate([hsv, ycrcb], axis=2).astype(np.float32)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Which features to compute: crop size, LBP radii, extra cue groups, margin.

    ``margin`` is the share of the crop around the face on each side (0.2: the aligned
    face fills the middle 60%). ``moments`` adds the mean (unless not ``moment_means``),
    standard deviation and skewness of each colour channel (18 or 12 values: the means
    follow the lighting more than the medium); ``sharpness`` adds four focus and
    frequency cues of the luma (:func:`sharpness_cues`). ``sqrt`` takes the square root of
    every histogram (the Hellinger map: a linear model on it behaves like a chi-square
    kernel on the histograms). ``aligned``: crop the face warped onto the ArcFace
    template (five landmarks) instead of the square around the detector's box.
    """

    size: int = 64
    radii: tuple[float, ...] = (1.0,)
    margin: float = 0.0
    moments: bool = False
    sharpness: bool = False
    sqrt: bool = False
    aligned: bool = False
    moment_means: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "size": self.size,
            "radii": list(self.radii),
            "margin": self.margin,
            "moments": self.moments,
            "sharpness": self.sharpness,
            "sqrt": self.sqrt,
            "aligned": self.aligned,
            "moment_means": self.moment_means,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureSpec:
        radii = data.get("radii", (1.0,))
        if not isinstance(radii, Sequence):
            raise ValueError(f"radii must be a list of numbers, got {radii!r}")
        return cls(
            size=int(str(data.get("size", 64))),
            radii=tuple(float(r) for r in radii),
            margin=float(str(data.get("margin", 0.0))),
            moments=bool(data.get("moments", False)),
            sharpness=bool(data.get("sharpness", False)),
            sqrt=bool(data.get("sqrt", False)),
            aligned=bool(data.get("aligned", False)),
            moment_means=bool(data.get("moment_means", True)),
        )

    @property
    def sharpness_index(self) -> int | None:
        """Where ``log_laplacian_var`` sits in the feature vector (``None``: no cues)."""
        return self.dim - len(SHARPNESS_CUES) if self.sharpness else None

    @property
    def dim(self) -> int:
        return (
            6 * LBP_BINS * len(self.radii)
            + ((18 if self.moment_means else 12) if self.moments else 0)
            + (len(SHARPNESS_CUES) if self.sharpness else 0)
        )


def face_crop(
    image: ImageArray, face: Face, *, size: int, margin: float = 0.0, aligned: bool = False
) -> ImageArray:
    """The face of ``image`` on a ``(size, size, 3)`` crop, ``margin`` of it on each side.

    ``aligned`` (and five landmarks): the face is warped upright onto the ArcFace template;
    else a square around the detector's box (centred on it, side = its longer side) is
    resized. Pixels outside the image repeat its border.
    """
    import cv2

    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    inner = size * (1.0 - 2.0 * margin)
    if aligned and face.landmarks is not None and face.landmarks.points.shape[0] >= 5:
        src, dst = arcface_points(face.landmarks)
        dst = dst * (inner / 112.0) + size * margin
        matrix = umeyama(src, dst)
    else:
        box = face.bbox
        side = max(box.width, box.height, 1.0)
        scale = inner / side
        cx, cy = (box.x1 + box.x2) / 2.0, (box.y1 + box.y2) / 2.0
        matrix = np.array(
            [[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]]
        )
    crop = cv2.warpAffine(
        np.ascontiguousarray(image[..., :3]),
        matrix,
        (size, size),
        flags=cv2.INTER_AREA if _shrink(matrix) else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    out: ImageArray = np.ascontiguousarray(crop)
    return out


def _shrink(matrix: np.ndarray) -> bool:
    return float(np.hypot(matrix[0, 0], matrix[0, 1])) < 1.0


#: Names of the cues :func:`sharpness_cues` returns, in order.
SHARPNESS_CUES = ("log_laplacian_var", "high_freq_ratio", "mid_freq_ratio", "log_grad_mean")


def sharpness_cues(rgb: ImageArray) -> FloatArray:
    """Focus and spectrum cues of the luma of a crop: log variance of the Laplacian, the
    share of spectral energy in the top and middle thirds of the frequencies (a re-imaged
    face loses the top one; a screen's pixel grid adds peaks to it), log mean gradient."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    radius = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    total = float(spectrum.sum()) + 1e-6
    high = float(spectrum[radius > 2 / 3].sum()) / total
    mid = float(spectrum[(radius > 1 / 3) & (radius <= 2 / 3)].sum()) / total
    return np.array(
        [
            np.log1p(float(lap.var())),
            high,
            mid,
            np.log1p(float(np.hypot(gx, gy).mean())),
        ],
        dtype=np.float32,
    )


def crop_contrast(crop: ImageArray) -> float:
    """Standard deviation of the grey levels (0-255) of a crop."""
    grey = crop[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(grey.std())


def colour_moments(channels: np.ndarray, *, means: bool = True) -> FloatArray:
    """Mean (if ``means``), standard deviation and skewness of each channel of
    ``(H, W, C)``, scaled to about unit range (``3 * C`` or ``2 * C`` values)."""
    flat = channels.reshape(-1, channels.shape[2]).astype(np.float64) / 255.0
    mean = flat.mean(0)
    std = flat.std(0)
    skew = ((flat - mean) ** 3).mean(0) / np.maximum(std, 1e-6) ** 3
    parts = (
        [mean, std, np.clip(skew, -10, 10) / 10] if means else [std, np.clip(skew, -10, 10) / 10]
    )
    return np.concatenate(parts).astype(np.float32)


def colour_texture_features(crop: ImageArray, spec: FeatureSpec) -> FloatArray:
    """The feature vector (``spec.dim`` float32 values) of a ``(size, size, 3)`` crop."""
    if crop.shape[:2] != (spec.size, spec.size):
        raise ValueError(
            f"crop must be ({spec.size}, {spec.size}, 3) for this spec, got {crop.shape}"
        )
    channels = colour_channels(crop)
    parts: list[np.ndarray] = []
    for radius in spec.radii:
        for c in range(channels.shape[2]):
            hist = uniform_lbp_histogram(channels[..., c], radius)
            parts.append(np.sqrt(hist) if spec.sqrt else hist)
    if spec.moments:
        parts.append(colour_moments(channels, means=spec.moment_means))
    if spec.sharpness:
        parts.append(sharpness_cues(crop))
    out: FloatArray = np.concatenate(parts).astype(np.float32)
    return out


def face_features(image: ImageArray, face: Face, spec: FeatureSpec) -> FloatArray:
    """:func:`colour_texture_features` of the face's crop (:func:`face_crop`)."""
    return colour_texture_features(spec_crop(image, face, spec), spec)


def spec_crop(image: ImageArray, face: Face, spec: FeatureSpec) -> ImageArray:
    """The crop ``spec`` asks for (:func:`face_crop` with its size, margin, alignment)."""
    return face_crop(image, face, size=spec.size, margin=spec.margin, aligned=spec.aligned)


__all__ = [
    "LBP_BINS",
    "SHARPNESS_CUES",
    "FeatureSpec",
    "colour_channels",
    "colour_moments",
    "colour_texture_features",
    "crop_contrast",
    "face_crop",
    "face_features",
    "lbp_codes",
    "sharpness_cues",
    "spec_crop",
    "uniform_lbp_histogram",
]
