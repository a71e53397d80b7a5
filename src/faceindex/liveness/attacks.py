"""Synthetic sanity inputs for a liveness checker: what must never be judged live.

- :func:`uniform_image`, :func:`noise_image`: no face at all;
- :func:`blurred`: a face so blurred that nothing about its surface can be told;
- :func:`screen_recapture`: a photo shown on a screen and filmed again: the screen's
  pixel grid (RGB stripes) sampled by the camera (moire), gamma and colour cast, a glare
  highlight, a dark bezel around the screen, and a perspective tilt.

They are deterministic given the ``seed``. A simulated recapture is not a real one: the
benchmark reports it as a sanity case, not as an error rate on real attacks.
"""

from __future__ import annotations

import numpy as np

from faceindex.types import ImageArray


def uniform_image(height: int = 480, width: int = 640, value: int = 128) -> ImageArray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def noise_image(height: int = 480, width: int = 640, *, seed: int = 0) -> ImageArray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def blurred(image: ImageArray, *, sigma: float = 8.0) -> ImageArray:
    import cv2

    out: ImageArray = np.asarray(cv2.GaussianBlur(image, (0, 0), sigmaX=sigma), dtype=np.uint8)
    return out


def screen_recapture(image: ImageArray, *, seed: int = 0, pitch_px: int = 3) -> ImageArray:
    """``image`` as if shown on a screen and photographed again (see the module doc).

    Each photo pixel is drawn as ``pitch_px`` x ``pitch_px`` screen pixels (R, G, B
    stripes, a dark gap between rows), with gamma 1.25, a cool cast and a glare blob; the
    screen is framed by a bezel, then a camera samples it in perspective at a
    non-integer scale without anti-aliasing (so the sub-pixel grid aliases into moire),
    with a little blur and sensor noise.
    """
    import cv2

    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    photo = image[..., :3].astype(np.float32) / 255.0
    # The screen at sub-pixel resolution: each photo pixel becomes pitch x pitch screen
    # pixels of R, G, B stripes with a dark gap between rows.
    k = max(pitch_px, 3)
    up = np.asarray(cv2.resize(photo, (w * k, h * k), interpolation=cv2.INTER_NEAREST))
    phase = np.arange(up.shape[1]) % 3  # R, G, B sub-pixel columns
    mask = np.zeros(up.shape, np.float32)
    for c in range(3):
        mask[:, phase == c, c] = 1.0
    mask[(np.arange(up.shape[0]) % k) == 0, :, :] *= np.float32(0.35)  # row gaps
    screen = up * (np.float32(0.25) + np.float32(0.75) * mask) * np.float32(1.6)
    screen = np.clip(screen, 0, 1) ** 1.25 * np.array([0.92, 0.98, 1.08], np.float32)
    # Glare: a soft bright blob somewhere on the screen.
    sh, sw = screen.shape[:2]
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    gy, gx = rng.uniform(0.15, 0.85) * sh, rng.uniform(0.15, 0.85) * sw
    radius = rng.uniform(0.12, 0.25) * min(sh, sw)
    screen += 0.55 * np.exp(-((yy - gy) ** 2 + (xx - gx) ** 2) / (2 * radius**2))[..., None]
    # Bezel and the room around it.
    border = int(0.08 * min(sh, sw))
    framed = np.full((sh + 2 * border, sw + 2 * border, 3), 0.05, np.float32)
    framed[border : border + sh, border : border + sw] = screen
    room = np.full((h, w, 3), rng.uniform(0.35, 0.6), np.float32)
    fh, fw = framed.shape[:2]
    src = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    tilt = rng.uniform(0.03, 0.08)
    dst = np.array(
        [
            [w * (0.08 + tilt), h * 0.06],
            [w * (0.92 - tilt), h * (0.06 + tilt)],
            [w * 0.95, h * 0.96],
            [w * 0.05, h * (0.94 - tilt)],
        ],
        np.float32,
    )
    # The camera samples the sub-pixel grid straight (no anti-aliasing): moire.
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = np.asarray(
        cv2.warpPerspective(
            framed,
            matrix,
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderValue=(-1.0, -1.0, -1.0),
        ),
        np.float32,
    )
    out = np.where(warped < 0, room, warped)
    out = np.asarray(cv2.GaussianBlur(out, (0, 0), sigmaX=0.7), np.float32)
    out = out + rng.normal(0, 0.015, out.shape).astype(np.float32)
    result: ImageArray = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
    return result
