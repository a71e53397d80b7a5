"""A scripted challenge measurer for tests of the active liveness check on the fake backends.

The fake detector and embedder find and embed synthetic faces for real (so the server
checks identity continuity), while what the fakes cannot measure (eye aspect ratio, yaw,
p(happy), box width, the passive verdict) comes from a plan, one frame at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from faceindex.liveness.challenge import FrameMeasurement
from faceindex.types import ImageArray

if TYPE_CHECKING:  # testing and pipeline are sibling layers: the type only
    from faceindex.pipeline import Pipeline

#: A frame where nothing happens: eyes open, facing the camera, not smiling, live.
NEUTRAL: dict[str, Any] = {"ear": 0.3, "yaw": 0.0, "happy": 0.05, "width": 100.0, "live": True}
#: The planned frames that perform each challenge (changes from :data:`NEUTRAL`).
ACTIONS: dict[str, list[dict[str, Any]]] = {
    "blink": [{}, {"ear": 0.08}, {"ear": 0.31}],
    "turn_left": [{}, {"yaw": 27.0}],
    "turn_right": [{}, {"yaw": -27.0}],
    "smile": [{}, {"happy": 0.9}],
    "move_closer": [{}, {"width": 140.0}],
}


class ScriptedMeasurer:
    """Faces and embeddings from the fake pipeline; the rest from ``plan``, in order."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.plan: list[dict[str, Any]] = []

    def measure(self, image: ImageArray, t_ms: float) -> FrameMeasurement:
        planned = {**NEUTRAL, **(self.plan.pop(0) if self.plan else {})}
        faces = self.pipeline.find_faces(image)
        if len(faces) != 1:
            return FrameMeasurement(t_ms=t_ms, faces=len(faces))
        face = self.pipeline.embed_faces(image, faces)[0]
        assert face.embedding is not None
        return FrameMeasurement(
            t_ms=t_ms,
            faces=1,
            box_width=planned["width"],
            ear=planned["ear"],
            yaw=planned["yaw"],
            happy=planned["happy"],
            embedding=np.asarray(face.embedding.vector, dtype=np.float32),
            live=planned["live"],
        )

    def warm_up(self) -> None:
        """Nothing to load."""
