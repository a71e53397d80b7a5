"""How visible a change is: PSNR and SSIM of two photos (numpy and OpenCV).

SSIM is Wang et al. (2004)'s, on luma (BT.601 Y, 0-255) with their 11x11 Gaussian window
(sigma 1.5) and constants K1 = 0.01, K2 = 0.03: the form most papers and image tools
report. PSNR is over the three RGB channels, peak 255.
"""

from __future__ import annotations

import math

import numpy as np

from faceindex.types import BBox, ImageArray

_LUMA = np.array([0.299, 0.587, 0.114], np.float64)


def _luma(image: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.asarray(image, np.float64)[..., :3] @ _LUMA
    return out


def psnr(a: ImageArray, b: ImageArray) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(a: ImageArray, b: ImageArray) -> float:
    """Mean structural similarity of the luma of two images (1.0: identical)."""
    import cv2

    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    x, y = _luma(a), _luma(b)
    if min(x.shape) < 11:  # the window does not fit: compare as one window
        return _ssim_global(x, y)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = cv2.GaussianBlur(v, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)[
            5:-5, 5:-5
        ]
        return out

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def _ssim_global(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = x.mean(), y.mean()
    sxy = ((x - mx) * (y - my)).mean()
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (x.var() + y.var() + c2)
    return float(num / den)


def face_window(box: BBox, width: int, height: int, *, grow: float = 0.2) -> tuple[slice, slice]:
    """Rows and columns of a face's box grown by ``grow`` of its size on each side, inside
    the photo: where a face's PSNR and SSIM are measured."""
    gx, gy = grow * box.width, grow * box.height
    x0 = max(0, math.floor(box.x1 - gx))
    y0 = max(0, math.floor(box.y1 - gy))
    x1 = min(width, math.ceil(box.x2 + gx))
    y1 = min(height, math.ceil(box.y2 + gy))
    return slice(y0, max(y1, y0 + 1)), slice(x0, max(x1, x0 + 1))
