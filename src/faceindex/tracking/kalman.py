"""A constant-velocity Kalman filter on one face box, with time (seconds) as the clock.

State ``(cx, cy, w, h, vcx, vcy, vw, vh)``: centre and size in pixels, their velocities in
pixels per second. Noise scales with the face's size (as in SORT/DeepSORT), so a large,
close face may move more pixels than a small, distant one. Time steps come from frame
timestamps, so dropped frames and sparse detections are predicted correctly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from faceindex.types import BBox

Matrix = npt.NDArray[np.float64]

_H = np.hstack([np.eye(4), np.zeros((4, 4))])


class BoxKalman:
    #: Measurement noise: detector jitter, as a fraction of the face size.
    measurement_std = 0.05
    #: Random-walk noise on position, fraction of the face size per sqrt(second).
    position_std = 0.1
    #: Random-walk noise on velocity (acceleration), face sizes per second per sqrt(second).
    velocity_std = 1.5

    def __init__(self, box: BBox, timestamp: float) -> None:
        z = _measure(box)
        self.x: Matrix = np.concatenate([z, np.zeros(4)])
        size = max(float(z[2]), float(z[3]), 1.0)
        self.P: Matrix = np.diag(
            np.r_[np.full(4, (2 * self.measurement_std * size) ** 2), np.full(4, (2 * size) ** 2)]
        )
        self.time = timestamp

    @property
    def size(self) -> float:
        return max(float(self.x[2]), float(self.x[3]), 1.0)

    def predict(self, timestamp: float) -> None:
        dt = timestamp - self.time
        if dt <= 0:
            return
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        s = self.size
        q = np.r_[
            np.full(4, (self.position_std * s) ** 2 * dt),
            np.full(4, (self.velocity_std * s) ** 2 * dt),
        ]
        self.x = F @ self.x
        self.P = F @ self.P @ F.T + np.diag(q)
        self.x[2] = max(self.x[2], 1.0)
        self.x[3] = max(self.x[3], 1.0)
        self.time = timestamp

    def update(self, box: BBox, timestamp: float) -> None:
        self.predict(timestamp)
        z = _measure(box)
        r = (self.measurement_std * self.size) ** 2
        S = _H @ self.P @ _H.T + np.eye(4) * r
        K = self.P @ _H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (z - _H @ self.x)
        self.P = (np.eye(8) - K @ _H) @ self.P
        self.x[2] = max(self.x[2], 1.0)
        self.x[3] = max(self.x[3], 1.0)

    def box(self) -> BBox:
        cx, cy, w, h = (float(v) for v in self.x[:4])
        return BBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    def box_at(self, timestamp: float) -> BBox:
        """The box predicted for ``timestamp`` without changing the filter."""
        dt = max(0.0, timestamp - self.time)
        cx, cy, w, h = (float(v) for v in self.x[:4] + self.x[4:] * dt)
        w, h = max(w, 1.0), max(h, 1.0)
        return BBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _measure(box: BBox) -> Matrix:
    return np.array(
        [(box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2, max(box.width, 1.0), max(box.height, 1.0)],
        dtype=np.float64,
    )
