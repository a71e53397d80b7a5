"""The attack on a stand-in net: it lowers the similarity, within the budget and the mask,
the same way for the same seed; the region, the transforms and the metrics it relies on."""

from __future__ import annotations

import numpy as np
import pytest
from cloak_helpers import SIZE, StandIn

torch = pytest.importorskip("torch")

from faceindex.cloak import transforms as T  # noqa: E402
from faceindex.cloak.attack import Crop, perturb, work_scale  # noqa: E402
from faceindex.cloak.budget import BUDGETS, Budget, Strength, budget_for  # noqa: E402
from faceindex.cloak.metrics import psnr, ssim  # noqa: E402
from faceindex.cloak.region import chip_corners, face_region  # noqa: E402
from faceindex.errors import InvalidInputError  # noqa: E402

QUICK = Budget(epsilon=12.0, min_ssim=0.5, steps=8, samples=1, transforms=False)


def _photo(seed: int = 0, side: int = 64) -> np.ndarray:
    """A textured 64x64 'face': smooth blobs plus noise, so a crop has something to see."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = np.stack(
        [128 + 80 * np.sin(6 * xx + c) * np.cos(5 * yy - c) for c in (0.0, 1.0, 2.0)], -1
    )
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _matrix(scale: float = SIZE / 48, offset: float = 8.0) -> np.ndarray:
    """A crop of the 48x48 square at (8, 8) of the 64x64 photo onto the 32 px chip."""
    return np.array([[scale, 0.0, -offset * scale], [0.0, scale, -offset * scale]])


def _embed(net: object, image: np.ndarray, matrix: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        chip = T.warp(x, torch.tensor(matrix, dtype=torch.float32)[None], SIZE)
        return net(chip)[0]  # type: ignore[operator]


def _mask(value: float = 1.0) -> np.ndarray:
    mask = np.zeros((64, 64), np.float32)
    mask[8:56, 8:56] = value
    return mask


@pytest.mark.slow
def test_attack_lowers_similarity_within_budget_and_mask(stand_in: StandIn) -> None:
    region = _photo()
    mask = _mask()
    crops = [Crop(stand_in.module, SIZE, stand_in.threshold, _matrix())]
    out = perturb(region, mask, crops, QUICK, seed=1)
    assert out.dtype == np.uint8 and out.shape == region.shape
    clean = _embed(stand_in.module, region, _matrix())
    after = _embed(stand_in.module, out, _matrix())
    assert float(clean @ after) < 0.8  # pushed away from the clean face (1.0 itself)
    change = np.abs(out.astype(int) - region.astype(int))
    assert change.max() <= QUICK.epsilon + 0.5  # L-inf budget (rounding to whole levels)
    assert change.max() >= 6  # and it did change something
    outside = mask == 0
    assert np.array_equal(out[outside], region[outside])  # untouched, bit for bit


@pytest.mark.slow
def test_attack_is_deterministic_by_seed(stand_in: StandIn) -> None:
    region, mask = _photo(), _mask()
    crops = [Crop(stand_in.module, SIZE, stand_in.threshold, _matrix())]
    quick = Budget(epsilon=8.0, min_ssim=0.5, steps=3, samples=2)
    a = perturb(region, mask, crops, quick, seed=7)
    b = perturb(region, mask, crops, quick, seed=7)
    c = perturb(region, mask, crops, quick, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # the seed picks the random transformations


@pytest.mark.slow
def test_ssim_floor_is_kept(stand_in: StandIn) -> None:
    region, mask = _photo(), _mask()
    crops = [Crop(stand_in.module, SIZE, stand_in.threshold, _matrix())]
    strict = Budget(epsilon=32.0, min_ssim=0.97, steps=4, samples=1)
    out = perturb(region, mask, crops, strict, seed=0)
    assert ssim(region[8:56, 8:56], out[8:56, 8:56]) >= 0.96
    assert not np.array_equal(out, region)


@pytest.mark.slow
def test_soft_mask_scales_the_change(stand_in: StandIn) -> None:
    region = _photo()
    crops = [Crop(stand_in.module, SIZE, stand_in.threshold, _matrix())]
    out = perturb(region, _mask(0.25), crops, QUICK, seed=1)
    change = np.abs(out.astype(int) - region.astype(int))
    assert change.max() <= 0.25 * QUICK.epsilon + 0.5


def test_perturb_refuses_mismatched_mask(stand_in: StandIn) -> None:
    crops = [Crop(stand_in.module, SIZE, stand_in.threshold, _matrix())]
    with pytest.raises(ValueError, match="do not fit"):
        perturb(_photo(), np.ones((10, 10), np.float32), crops, QUICK, seed=0)


def test_work_scale_shrinks_large_faces_only() -> None:
    assert work_scale([Crop(None, SIZE, 0.5, _matrix(scale=0.25))]) == pytest.approx(0.25)
    assert work_scale([Crop(None, SIZE, 0.5, _matrix(scale=2.0))]) == 1.0


def test_region_covers_crops_on_block_grid_with_feathered_mask() -> None:
    matrix = np.array([[0.5, 0.0, -50.0], [0.0, 0.5, -60.0]])  # chip of [100, 164) x [120, 184)
    region = face_region([(matrix, 32)], width=400, height=300)
    corners = chip_corners(matrix, 32)
    assert region.x0 % 8 == 0 and region.y0 % 8 == 0
    assert region.x0 <= corners[:, 0].min() and region.x1 >= corners[:, 0].max()
    assert region.y0 <= corners[:, 1].min() and region.y1 >= corners[:, 1].max()
    centre = region.mask[region.height // 2, region.width // 2]
    assert centre == pytest.approx(1.0, abs=1e-3)
    # zero on the rectangle's edges (inside the photo), soft in between
    assert region.mask[0].max() == 0 and region.mask[:, 0].max() == 0
    assert region.mask[-1].max() == 0 and region.mask[:, -1].max() == 0
    assert ((region.mask > 0.05) & (region.mask < 0.95)).any()
    local = region.local(matrix)
    assert np.allclose(local @ [corners[0, 0] - region.x0, corners[0, 1] - region.y0, 1], 0)


def test_region_is_clipped_to_the_photo() -> None:
    matrix = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 10.0]])  # chip partly left of the photo
    region = face_region([(matrix, 32)], width=100, height=100)
    assert region.x0 == 0 and region.y0 == 0 and region.x1 <= 100
    assert region.mask.shape == (region.height, region.width)


def test_jpeg_approximation_is_close_to_a_real_jpeg_and_has_gradients() -> None:
    import io

    from PIL import Image

    image = _photo(3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=75)
    real = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float32)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().requires_grad_(True)
    approx = T.jpeg(x, 75)
    approx.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    err = np.abs(approx.detach()[0].permute(1, 2, 0).numpy() - real).mean()
    plain = np.abs(image.astype(np.float32) - real).mean()
    assert err < plain  # nearer the real JPEG than the photo itself is


def test_warp_matches_cv2() -> None:
    import cv2

    image = _photo(4)
    matrix = np.array([[0.6, 0.1, -3.0], [-0.1, 0.6, 2.0]])
    want = cv2.warpAffine(image, matrix, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    got = T.warp(x, torch.tensor(matrix, dtype=torch.float32)[None], SIZE)
    got_np = got[0].permute(1, 2, 0).numpy()
    assert np.abs(got_np - want.astype(np.float32)).max() < 2.0


def test_metrics() -> None:
    image = _photo(5)
    assert psnr(image, image) == float("inf") and ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image.astype(int) + 8, 0, 255).astype(np.uint8)
    assert 25 < psnr(image, noisy) < 35
    assert ssim(image, noisy) < 1.0
    with pytest.raises(ValueError):
        psnr(image, image[:10])


def test_budgets() -> None:
    eps = [BUDGETS[s].epsilon for s in (Strength.LOW, Strength.MEDIUM, Strength.HIGH)]
    assert eps == sorted(eps) and len(set(eps)) == 3
    assert budget_for("high") is BUDGETS[Strength.HIGH]
    with pytest.raises(InvalidInputError, match="low, medium, high"):
        budget_for("extreme")
    with pytest.raises(ValueError):
        Budget(epsilon=0.0, min_ssim=0.9, steps=1)
