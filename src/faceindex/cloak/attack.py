"""The attack: projected gradient descent on one face's region, through an ensemble (torch).

For one face, with the region and mask of :mod:`faceindex.cloak.region`:

    x = clip(x0 + mask * delta, 0, 255),   |delta| <= epsilon (per channel)

and ``delta`` minimises, over random transformations ``T`` of :mod:`.transforms`,

    sum over models m of  max(z_m, -FLOOR),  z_m = (cos(f_m(T(x)), f_m(x0)) - t_m) / (1 - t_m)
    + max(0, min_ssim - SSIM_mask(x, x0))

where ``f_m`` is model m's embedding of its own crop and ``t_m`` its calibrated threshold,
so that each model's similarity is measured in its own units (dlib's scores crowd near 1,
SFace's spread over [-0.2, 1]) and one model pushed far past its threshold stops taking
the steps the other still needs. Each model's gradient (and the hinge's, while active)
is scaled to unit mean magnitude before they are added, so that no model of the ensemble
drowns the other's direction (dlib's normalised score moves ~10x faster than SFace's).
Steps are signed gradients (L-inf PGD, Madry et al. 2018) with a cosine-decayed size
from epsilon/4 to epsilon/25, starting from no change, so pixels no crop sees are never
touched. At the end the change is scaled down, if needed, until the masked SSIM holds its
floor exactly (a bisection).

Why this attack (docs/cloak.md has the measurements):

- *feature space, untargeted*: Fawkes (Shan et al. 2020) pulls a face's features toward
  another identity's, which needs a set of other people's faces to choose from; LowKey
  (Cherepanova et al. 2021) pushes them away from the clean face's and transferred better
  to commercial recognisers. faceindex ships no faces of other people, and the goal is not
  to be recognised, not to be taken for someone: untargeted.
- *an ensemble*: perturbations that fool several models transfer to unseen ones (Liu et
  al. 2017; LowKey's ensemble); here every recogniser faceindex has.
- *robust to what sites do*: LowKey's smoothing and expectation over transformation
  (Athalye et al. 2018) with a differentiable JPEG (Shin and Song 2017) and input
  diversity (Xie et al. 2019): :mod:`faceindex.cloak.transforms`.
- *a perceptual bound*: L-inf alone lets flat areas fill with visible noise; Fawkes bounds
  its cloak by DSSIM, as the SSIM hinge does here.
- what no cloak escapes: recognisers trained on cloaked photos, or simply later models
  (Radiya-Dixit et al. 2022, "Data poisoning won't save you from facial recognition").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from faceindex.cloak import transforms as T
from faceindex.cloak.budget import Budget
from faceindex.types import FloatArray, ImageArray

#: A model's normalised score stops counting below this many threshold-gaps under its
#: threshold (``z_m = -FLOOR``): for dlib (t = 0.929) a similarity of 0.787, for SFace
#: (t = 0.369) -0.89.
FLOOR = 2.0
#: Weight of the SSIM hinge's (normalised) gradient, per model, while it is active.
HINGE = 2.0


@dataclass(frozen=True, slots=True)
class Crop:
    """One model's view of the face: its network, crop side, threshold and the matrix
    that cuts its crop from the *region* (region px -> crop px)."""

    module: Any
    size: int
    threshold: float
    matrix: np.ndarray


def _embed(module: Any, chips: torch.Tensor) -> torch.Tensor:
    return F.normalize(module(chips).reshape(chips.shape[0], -1), dim=1)


def _masked_ssim(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """SSIM of the luma of ``a`` and ``b`` (``(1, 3, H, W)``) averaged with ``weight``
    (``(1, 1, H, W)``) over the valid 11x11 windows: what the mask changes, not the
    untouched pixels around it, sets the figure."""
    luma = a.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x, y = (a * luma).sum(1, keepdim=True), (b * luma).sum(1, keepdim=True)
    t = torch.arange(-5, 6, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * 1.5**2))
    k = k / k.sum()

    def blur(v: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(v, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    w = weight[:, :, 5:-5, 5:-5]
    return (smap * w).sum() / w.sum().clamp_min(1e-6)


def work_scale(crops: Sequence[Crop]) -> float:
    """The resolution the attack works at, as a share of the photo's: a large face is
    shrunk (antialiased) until its largest crop is cut about 1:1, since a bilinear cut of
    a far larger face would see (and perturb) only the pixels it happens to sample."""
    scales = [math.sqrt(abs(float(np.linalg.det(np.asarray(c.matrix)[:, :2])))) for c in crops]
    return min(1.0, max(scales))


def perturb(
    region: ImageArray,
    mask: FloatArray,
    crops: Sequence[Crop],
    budget: Budget,
    *,
    seed: int,
    progress: Any = None,
) -> ImageArray:
    """The cloaked region ``(h, w, 3)`` uint8 of ``region`` (same shape), changed only
    where ``mask`` > 0 and by at most ``budget.epsilon`` levels a channel.

    ``progress(done, total)`` is called after each step, if given.
    """
    if region.ndim != 3 or region.shape[2] != 3 or region.shape[:2] != mask.shape:
        raise ValueError(f"region {region.shape} and mask {mask.shape} do not fit")
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.from_numpy(np.ascontiguousarray(region)).permute(2, 0, 1)[None].float()
    weight = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    work = work_scale(crops)
    eps = float(budget.epsilon)
    small = min(region.shape[:2]) < 11  # too small for SSIM windows: no hinge
    with torch.no_grad():
        base = T.apply(x0, T.draw(generator, identity=True), work)
        sy, sx = base.shape[-2] / x0.shape[-2], base.shape[-1] / x0.shape[-1]
        clean = []
        for crop in crops:
            matrix = T.jitter(crop.matrix, T.draw(generator, identity=True), crop.size, sx, sy)
            chips = T.warp(base, torch.tensor(matrix, dtype=torch.float32)[None], crop.size)
            clean.append(_embed(crop.module, chips)[0])
    delta = torch.zeros_like(x0)
    for step in range(budget.steps):
        delta.requires_grad_(True)
        x = torch.clamp(x0 + weight * delta, 0.0, 255.0)
        draws = [T.draw(generator, identity=not budget.transforms) for _ in range(budget.samples)]
        views = [T.apply(x, d, work) for d in draws]
        terms = []
        for crop, target in zip(crops, clean, strict=True):
            cuts = []
            for d, view in zip(draws, views, strict=True):
                vy, vx = view.shape[-2] / x0.shape[-2], view.shape[-1] / x0.shape[-1]
                matrix = T.jitter(crop.matrix, d, crop.size, vx, vy)
                cuts.append(
                    T.warp(view, torch.tensor(matrix, dtype=torch.float32)[None], crop.size)
                )
            cos = (_embed(crop.module, torch.cat(cuts)) @ target).mean()
            z = (cos - crop.threshold) / (1.0 - crop.threshold)
            if float(z.detach()) > -FLOOR:  # past its floor a model takes no more steps
                terms.append(z)
        if not small:
            hinge = F.relu(budget.min_ssim - _masked_ssim(x, x0, weight))
            if float(hinge.detach()) > 0:
                terms.append(HINGE * len(crops) * hinge)
        if not terms:  # every model past its floor, SSIM kept: nothing left to do
            if progress is not None:
                progress(budget.steps, budget.steps)
            break
        grad = torch.zeros_like(delta)
        for i, term in enumerate(terms):
            (g,) = torch.autograd.grad(term, delta, retain_graph=i < len(terms) - 1)
            grad += g / g.abs().mean().clamp_min(1e-12)  # each model (and the hinge) alike
        alpha = eps / 25 + (eps / 4 - eps / 25) * 0.5 * (
            1 + math.cos(math.pi * step / budget.steps)
        )
        with torch.no_grad():
            delta = torch.clamp(delta.detach() - alpha * torch.sign(grad), -eps, eps)
        if progress is not None:
            progress(step + 1, budget.steps)
    with torch.no_grad():
        delta = _fit_ssim(x0, weight, delta.detach(), budget.min_ssim, skip=small)
        out = torch.clamp(torch.round(x0 + weight * delta), 0.0, 255.0)
    cloaked = out[0].permute(1, 2, 0).numpy().astype(np.uint8)
    # Pixels outside the mask are exactly the input's (rounding cannot move them).
    keep = mask <= 0.0
    cloaked[keep] = region[keep]
    return cloaked


def _fit_ssim(
    x0: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor, floor: float, *, skip: bool
) -> torch.Tensor:
    """``delta`` scaled by the largest factor in [0, 1] (to 1/64) that keeps the masked
    SSIM at ``floor`` or above."""
    if skip:
        return delta

    def ok(factor: float) -> bool:
        x = torch.clamp(torch.round(x0 + weight * delta * factor), 0.0, 255.0)
        return float(_masked_ssim(x, x0, weight)) >= floor

    if ok(1.0):
        return delta
    lo, hi = 0.0, 1.0
    for _ in range(6):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return delta * lo
