"""Seeded photo degradations: what real-world photos do to a face, reproducibly.

Used by ``benchmarks/degradation.py`` (docs/robustness.md reports the figures) and by
tests. Every transform takes an ``(H, W, 3)`` RGB ``uint8`` image and returns a new one of
the same shape and dtype; the random ones take a ``seed`` and give the same pixels for the
same seed. Parameters are in pixels of the image, or, for occlusions, placed from the
face's five landmarks (YuNet / ArcFace order: right eye, left eye, nose, mouth corners).

- :func:`gaussian_blur` (``sigma`` px) and :func:`motion_blur` (a line kernel of
  ``length`` px at ``angle`` degrees): defocus and camera shake;
- :func:`dark`: low light as a sensor sees it: gamma (``x ** gamma``), the range squeezed
  to ``gain`` of full scale, then Gaussian sensor noise of ``noise`` grey levels;
- :func:`lowres`: shrink by ``factor`` (area averaging), then back to the original size
  (bilinear): a small face, seen at the size the recogniser needs;
- :func:`jpeg`: JPEG encode and decode at ``quality`` (OpenCV's encoder, 4:2:0);
- :func:`occlude`: a flat patch over part of the face: ``mask`` (a face mask from just
  below the eyes' level to under the chin), ``sunglasses`` (a dark band over both eyes),
  ``hand`` (a skin-coloured ellipse the size of a palm, placed at random over the lower
  half of the face);
- :func:`grey`: a single channel (luma) copied to the three.

:func:`photo_seed` derives a per-photo seed from a base seed and the photo's name, so a
photo is degraded the same way whatever order a benchmark reads it in. :func:`soft_detect`
makes the fake detector less confident on blurred faces, as a real one is, for tests of
the quality floor (``--reject-below``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from faceindex.types import Face, ImageArray

__all__ = [
    "Occlusion",
    "dark",
    "gaussian_blur",
    "grey",
    "jpeg",
    "lowres",
    "motion_blur",
    "occlude",
    "photo_seed",
    "soft_detect",
]


class Occlusion(enum.StrEnum):
    MASK = "mask"
    SUNGLASSES = "sunglasses"
    HAND = "hand"


def photo_seed(base: int, name: str) -> int:
    """A seed for one photo: ``base`` mixed with the CRC-32 of ``name`` (order-free)."""
    return (base * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**32)


def _check(image: ImageArray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")


def _to_uint8(values: np.ndarray) -> ImageArray:
    out: ImageArray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return out


def gaussian_blur(image: ImageArray, sigma: float) -> ImageArray:
    """Defocus: a Gaussian of ``sigma`` pixels (kernel 6 sigma + 1 wide)."""
    import cv2

    _check(image)
    if sigma <= 0:
        return image.copy()
    k = 2 * math.ceil(3 * sigma) + 1
    out: ImageArray = np.asarray(
        cv2.GaussianBlur(image, (k, k), sigmaX=sigma, sigmaY=sigma), np.uint8
    )
    return out


def motion_blur(image: ImageArray, length: int, angle: float = 0.0) -> ImageArray:
    """Camera shake: the average along a line ``length`` pixels long at ``angle`` degrees
    (0 = horizontal)."""
    import cv2

    _check(image)
    if length <= 1:
        return image.copy()
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    centre = ((length - 1) / 2.0, (length - 1) / 2.0)
    rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
    kernel = np.asarray(
        cv2.warpAffine(kernel, rot, (length, length), flags=cv2.INTER_LINEAR), np.float32
    )
    kernel /= max(float(kernel.sum()), 1e-6)
    out: ImageArray = np.asarray(
        cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT), np.uint8
    )
    return out


def dark(
    image: ImageArray, *, gamma: float, gain: float, noise: float, seed: int = 0
) -> ImageArray:
    """Low light: ``255 * gain * (x / 255) ** gamma`` plus Gaussian noise of ``noise`` grey
    levels (independent per pixel and channel, from ``seed``)."""
    _check(image)
    x = image.astype(np.float32) / 255.0
    y = 255.0 * gain * np.power(x, gamma)
    if noise > 0:
        y = y + np.random.default_rng(seed).normal(0.0, noise, size=y.shape)
    return _to_uint8(y)


def lowres(image: ImageArray, factor: float) -> ImageArray:
    """Shrink by ``factor`` (< 1; area averaging), then enlarge back to the same size
    (bilinear). A face ``F`` px wide keeps about ``F * factor`` pixels of detail."""
    import cv2

    _check(image)
    if factor >= 1.0:
        return image.copy()
    h, w = image.shape[:2]
    small = cv2.resize(
        image,
        (max(1, round(w * factor)), max(1, round(h * factor))),
        interpolation=cv2.INTER_AREA,
    )
    out: ImageArray = np.asarray(
        cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8
    )
    return out


def jpeg(image: ImageArray, quality: int) -> ImageArray:
    """JPEG at ``quality`` (1-100), decoded again."""
    import cv2

    _check(image)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("JPEG encoding failed")
    decoded = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)
    out: ImageArray = np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), np.uint8)
    return out


def grey(image: ImageArray) -> ImageArray:
    """One channel: the luma (ITU-R 601) copied to R, G and B."""
    _check(image)
    luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return _to_uint8(np.repeat(luma[..., None], 3, axis=2))


#: Flat colours of the occluders (RGB): a light blue surgical mask, near-black lenses,
#: a mid skin tone.
_COLOURS = {
    Occlusion.MASK: (170, 200, 220),
    Occlusion.SUNGLASSES: (20, 20, 24),
    Occlusion.HAND: (205, 160, 130),
}


def occlude(
    image: ImageArray, landmarks: np.ndarray, kind: Occlusion | str, *, seed: int = 0
) -> ImageArray:
    """A flat patch over part of the face, placed from its five ``landmarks`` ``(5, 2)``.

    Coordinates are in the face's frame: ``u`` along the eye line, ``v`` down from the
    eyes' midpoint, both in units of ``d``, the distance between the eyes.
    ``mask``: ``|u| <= 1.1``, from 40% of the way from the eye line to the nose tip down to
    the mouth plus ``0.9 d``; ``sunglasses``: ``|u| <= 1.05``, ``|v| <= 0.3``; ``hand``: an
    ellipse of half-axes ``0.75 d`` x ``1.05 d`` at a random angle, centred at a random
    ``u`` in [-0.6, 0.6], ``v`` in [0.7, 1.3] (from ``seed``)."""
    import cv2

    _check(image)
    kind = Occlusion(kind)
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"occlude needs five landmarks (5, 2), got {pts.shape}")
    eye_a, eye_b, nose = pts[0], pts[1], pts[2]
    mouth = (pts[3] + pts[4]) / 2.0
    axis = eye_b - eye_a
    d = float(np.linalg.norm(axis))
    if d < 1e-6:
        raise ValueError("the eyes' landmarks coincide")
    ux = axis / d
    uy = np.array([-ux[1], ux[0]])
    if float(np.dot(mouth - (eye_a + eye_b) / 2.0, uy)) < 0:  # image y points down
        uy = -uy
    origin = (eye_a + eye_b) / 2.0

    def to_image(u: float, v: float) -> tuple[float, float]:
        p = origin + d * (u * ux + v * uy)
        return float(p[0]), float(p[1])

    out = image.copy()
    colour = tuple(int(c) for c in _COLOURS[kind])
    if kind is Occlusion.HAND:
        rng = np.random.default_rng(seed)
        cu, cv = rng.uniform(-0.6, 0.6), rng.uniform(0.7, 1.3)
        angle = rng.uniform(0.0, 180.0)
        cx, cy = to_image(cu, cv)
        base = math.degrees(math.atan2(ux[1], ux[0]))
        cv2.ellipse(
            out,
            (round(cx), round(cy)),
            (max(1, round(0.75 * d)), max(1, round(1.05 * d))),
            base + angle,
            0,
            360,
            colour,
            thickness=-1,
            lineType=cv2.LINE_AA,
        )
        return out
    if kind is Occlusion.MASK:
        nose_v = float(np.dot(nose - origin, uy)) / d
        mouth_v = float(np.dot(mouth - origin, uy)) / d
        u0, u1, v0, v1 = -1.1, 1.1, 0.4 * nose_v, mouth_v + 0.9
    else:
        u0, u1, v0, v1 = -1.05, 1.05, -0.3, 0.3
    corners = [to_image(u0, v0), to_image(u1, v0), to_image(u1, v1), to_image(u0, v1)]
    poly = np.array([[round(x), round(y)] for x, y in corners], np.int32)
    cv2.fillPoly(out, [poly], colour, lineType=cv2.LINE_AA)
    return out


#: Sharpness (variance of the Laplacian at 112 px, as :func:`faceindex.quality.assess`
#: measures it) over which :func:`soft_detect`'s confidence climbs back to the original.
SOFT_SHARPNESS = (2.0, 6.0)


def soft_detect(
    detect: Callable[[Any, ImageArray], tuple[Face, ...]],
) -> Callable[[Any, ImageArray], tuple[Face, ...]]:
    """A fake detector's ``detect`` made less confident on blurred faces, as a real
    detector is (the quality score is the detector's confidence): each face's score goes
    to 0.6 for a face with no detail, back to its own score from a sharpness of 6 up. For
    tests of what a low quality score does (``monkeypatch.setattr(FakeDetector, "detect",
    soft_detect(FakeDetector.detect))``)."""
    from faceindex.quality import assess

    def wrapped(self: Any, image: ImageArray) -> tuple[Face, ...]:
        faces = detect(self, image)
        out = []
        for face in faces:
            sharp = assess(image, face).sharpness
            low, high = SOFT_SHARPNESS
            t = min(max((sharp - low) / (high - low), 0.0), 1.0)
            out.append(dataclasses.replace(face, score=0.6 + (face.score - 0.6) * t))
        return tuple(out)

    return wrapped


def eyes_shut(image: ImageArray, points: np.ndarray) -> ImageArray:
    """``image`` with both eyes painted shut: each eye (dlib 68-point indices 36-41 and
    42-47 in ``points``) covered by an ellipse of the skin just below it, with a dark lid
    line drawn across. A stand-in for a blink in the liveness tests, where no photo of
    closed eyes ships."""
    import cv2

    out = image.copy()
    for first in (36, 42):
        eye = points[first : first + 6]
        (x1, y1), (x2, y2) = eye.min(0), eye.max(0)
        width = x2 - x1
        below = int(y2 + 0.5 * width)
        skin = np.median(image[below - 3 : below + 3, int(x1) : int(x2)].reshape(-1, 3), axis=0)
        centre = (int((x1 + x2) / 2), int((y1 + y2) / 2))
        axes = (int(width * 0.65), int((y2 - y1) * 1.8 + 3))
        cv2.ellipse(out, centre, axes, 0, 0, 360, tuple(int(v) for v in skin), -1)
        xs = np.linspace(eye[0][0], eye[3][0], 20)
        ys = (
            np.linspace(eye[0][1], eye[3][1], 20)
            + np.sin(np.linspace(0, np.pi, 20)) * (y2 - y1) * 0.3
        )
        line = np.stack([xs, ys], 1).astype(np.int32)
        cv2.polylines(out, [line], False, (40, 30, 30), 1, cv2.LINE_AA)
    return out
