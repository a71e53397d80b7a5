"""Differentiable stand-ins for what happens to a photo after it is shared (torch).

The attack optimises the cloak through these, averaged over random draws (expectation
over transformation, Athalye et al. 2018), so that it survives them for real:

- a **resize** to 50-100 % (sites shrink uploads), antialiased as image libraries do;
- **JPEG** at quality 50-95, approximated differentiably (Shin and Song 2017): 8x8 DCT of
  YCbCr with 4:2:0 chroma, quantised with libjpeg's tables scaled for the quality, the
  rounding replaced by ``round(x) + (x - round(x))**3`` so that gradients pass;
- a light **blur** (sigma 0.4-1.0), as a denoiser or a soft resampler does;
- **input diversity** (Xie et al. 2019): each crop is cut a little shifted, scaled and
  rotated (+-2 px, +-3 %, +-3 degrees), as a different detector's landmarks would cut it.

Also :func:`warp` (a batch of crops, each with its own matrix, as ``cv2.warpAffine``
cuts them) and :func:`ssim` (differentiable, for the perceptual hinge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# libjpeg's base quantisation tables (ITU T.81, Annex K), row by row.
_Q_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
]
_Q_CHROMA = [
    [17, 18, 24, 47, 99, 99, 99, 99],
    [18, 21, 26, 66, 99, 99, 99, 99],
    [24, 26, 56, 99, 99, 99, 99, 99],
    [47, 66, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
]


def _dct_matrix() -> torch.Tensor:
    d = np.zeros((8, 8), np.float64)
    for k in range(8):
        scale = math.sqrt(1 / 8) if k == 0 else math.sqrt(2 / 8)
        for n in range(8):
            d[k, n] = scale * math.cos(math.pi * (2 * n + 1) * k / 16)
    return torch.tensor(d, dtype=torch.float32)


_DCT = _dct_matrix()


def quant_table(quality: float, chroma: bool) -> torch.Tensor:
    """libjpeg's table for ``quality`` (1-100), as floats (``jpeg_quality_scaling``)."""
    q = min(max(quality, 1.0), 100.0)
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    base = torch.tensor(_Q_CHROMA if chroma else _Q_LUMA, dtype=torch.float32)
    return torch.clamp(torch.floor((base * scale + 50.0) / 100.0), 1.0, 255.0)


def soft_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a gradient: ``round(x) + (x - round(x))**3`` (Shin and Song 2017)."""
    r = torch.round(x)
    return r + (x - r) ** 3


def _blocks(channel: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """``(B, H, W)`` (multiples of 8) -> ``(B, H/8, W/8, 8, 8)`` blocks."""
    b, h, w = channel.shape
    blocks = channel.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    return blocks, h, w


def _unblocks(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b = blocks.shape[0]
    return blocks.permute(0, 1, 3, 2, 4).reshape(b, h, w)


def _quantise(channel: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    blocks, h, w = _blocks(channel)
    coef = _DCT @ blocks @ _DCT.T
    coef = soft_round(coef / table) * table
    return _unblocks(_DCT.T @ coef @ _DCT, h, w)


def jpeg(image: torch.Tensor, quality: float) -> torch.Tensor:
    """A differentiable approximation of a JPEG round trip of ``(B, 3, H, W)`` RGB 0-255."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % 16, (-w) % 16
    x = F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image
    r, g, bl = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * bl - 128.0
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl
    y = _quantise(y, quant_table(quality, chroma=False))
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)  # 4:2:0
    cq = torch.stack(
        [_quantise(chroma[:, i], quant_table(quality, chroma=True)) for i in range(2)], 1
    )
    cb, cr = F.interpolate(cq, scale_factor=2.0, mode="bilinear", align_corners=False).unbind(1)
    y = y + 128.0
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return out[:, :, :h, :w]


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(B, C, H, W)`` blurred by a separable Gaussian (reflected borders)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = image.shape[1]
    x = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def resize(image: torch.Tensor, scale: float) -> torch.Tensor:
    """``(B, C, H, W)`` scaled by ``scale`` (antialiased when shrinking)."""
    h, w = image.shape[-2:]
    size = (max(2, round(h * scale)), max(2, round(w * scale)))
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def warp(image: torch.Tensor, matrices: torch.Tensor, size: int) -> torch.Tensor:
    """Crops ``(N, 3, size, size)`` of ``image`` ``(N, 3, H, W)``: crop ``i`` is cut by
    ``matrices[i]`` (``(N, 2, 3)``, image px -> crop px, pixel centres at integers, as
    ``cv2.warpAffine`` with ``INTER_LINEAR`` and ``BORDER_REPLICATE``)."""
    n, _, h, w = image.shape
    full = torch.cat([matrices, matrices.new_tensor([0.0, 0.0, 1.0]).expand(n, 1, 3)], 1)
    inverse = torch.linalg.inv(full.double()).float()  # crop px -> image px
    axis = torch.arange(size, dtype=torch.float32)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    grid = torch.stack([gx, gy, torch.ones_like(gx)], -1).reshape(1, -1, 3)
    src = grid @ inverse[:, :2].transpose(1, 2)  # (N, size*size, 2) image px
    norm = torch.stack([(2 * src[..., 0] + 1) / w - 1, (2 * src[..., 1] + 1) / h - 1], -1)
    return F.grid_sample(
        image,
        norm.view(n, size, size, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of the luma of two ``(1, 3, H, W)`` 0-255 images (as :mod:`.metrics`),
    differentiable; both sides at least 11 px."""
    luma = a.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x, y = (a * luma).sum(1, keepdim=True), (b * luma).sum(1, keepdim=True)
    t = torch.arange(-5, 6, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * 1.5**2))
    k = k / k.sum()

    def blur(v: torch.Tensor) -> torch.Tensor:
        v = F.conv2d(v, k.view(1, 1, 1, -1))
        return F.conv2d(v, k.view(1, 1, -1, 1))

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return (num / den).mean()


@dataclass(frozen=True, slots=True)
class Draw:
    """One random transformation of the expectation."""

    scale: float
    quality: float | None
    blur: float | None
    #: Input diversity of the crop: shift (px), relative scale, rotation (radians).
    shift: tuple[float, float]
    zoom: float
    angle: float


def draw(generator: torch.Generator, *, identity: bool = False) -> Draw:
    """A random :class:`Draw` (``identity``: none at all)."""
    if identity:
        return Draw(1.0, None, None, (0.0, 0.0), 1.0, 0.0)
    u = torch.rand(8, generator=generator).tolist()
    return Draw(
        scale=0.5 + 0.5 * u[0],
        quality=50.0 + 45.0 * u[1] if u[2] < 0.7 else None,
        blur=0.4 + 0.6 * u[3] if u[4] < 0.3 else None,
        shift=(4.0 * u[5] - 2.0, 4.0 * u[6] - 2.0),
        zoom=1.0 + 0.06 * (u[7] - 0.5),
        angle=math.radians(6.0 * (u[0] * u[7] - 0.25)),
    )


def jitter(matrix: np.ndarray, d: Draw, size: int, sx: float, sy: float) -> np.ndarray:
    """``matrix`` (image px -> crop px) for the image resized by ``sx``, ``sy`` (pixel
    centres as ``resize`` places them), with the crop shifted, zoomed and rotated about
    its centre by ``d``."""
    m = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    # resized px -> original px: p = (p' + 0.5) / s - 0.5
    unscale = np.array(
        [[1.0 / sx, 0.0, 0.5 / sx - 0.5], [0.0, 1.0 / sy, 0.5 / sy - 0.5], [0.0, 0.0, 1.0]]
    )
    c = (size - 1) / 2.0
    cos, sin = math.cos(d.angle) * d.zoom, math.sin(d.angle) * d.zoom
    about = np.array(
        [
            [cos, -sin, c - cos * c + sin * c + d.shift[0]],
            [sin, cos, c - sin * c - cos * c + d.shift[1]],
            [0.0, 0.0, 1.0],
        ]
    )
    out: np.ndarray = (about @ m @ unscale)[:2]
    return out


def apply(image: torch.Tensor, d: Draw, work_scale: float) -> torch.Tensor:
    """The photo-level part of ``d`` on ``(1, 3, H, W)``: resize (times ``work_scale``,
    the attack's own working resolution), JPEG, blur."""
    scale = d.scale * work_scale
    x = resize(image, scale) if abs(scale - 1.0) > 1e-6 else image
    if d.quality is not None:
        x = jpeg(x, d.quality)
    if d.blur is not None:
        x = gaussian_blur(x, d.blur)
    return x
