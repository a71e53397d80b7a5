"""How hard the cloak pushes: the three strengths as data (no torch here).

Each strength is an L-inf budget on the change of a pixel (in 0-255 levels, per RGB
channel), a structural-similarity floor the optimiser must keep on the face region (a
DSSIM hinge, as Fawkes bounds its perturbation), and how many projected-gradient steps
it takes. The figures behind the choices are in docs/cloak.md (benchmarks/cloak.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from faceindex.errors import InvalidInputError


class Strength(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class Budget:
    """One strength's limits and effort."""

    #: Largest change of one channel of one pixel, in 0-255 levels (L-inf).
    epsilon: float
    #: The structural similarity (SSIM, on luma) the face region keeps at least: a change
    #: that would drop it lower is penalised (hinge) while the attack runs.
    min_ssim: float
    #: Projected-gradient steps.
    steps: int
    #: Random transforms (resize, JPEG, blur, shifts) averaged over at each step
    #: (expectation over transformation, so the cloak survives what a site does to it).
    samples: int = 1
    #: Whether the steps average over random transforms at all (False: only the crops as
    #: the recognisers cut them from the photo itself; a cloak that does not survive a
    #: resize or a JPEG, kept for tests and for measuring what robustness costs).
    transforms: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 64.0:
            raise ValueError(f"epsilon must be in (0, 64] levels, got {self.epsilon}")
        if not 0.0 < self.min_ssim < 1.0:
            raise ValueError(f"min_ssim must be in (0, 1), got {self.min_ssim}")
        if self.steps < 1 or self.samples < 1:
            raise ValueError("steps and samples must be at least 1")


#: The shipped budgets (tuned with benchmarks/cloak.py; docs/cloak.md has the figures).
BUDGETS: dict[Strength, Budget] = {
    Strength.LOW: Budget(epsilon=8.0, min_ssim=0.97, steps=10),
    Strength.MEDIUM: Budget(epsilon=12.0, min_ssim=0.96, steps=15),
    Strength.HIGH: Budget(epsilon=16.0, min_ssim=0.95, steps=20),
}


def budget_for(strength: Strength | str) -> Budget:
    """The budget of a strength given as the enum or its name."""
    try:
        return BUDGETS[Strength(strength)]
    except ValueError:
        valid = ", ".join(s.value for s in Strength)
        raise InvalidInputError(
            f"unknown cloak strength {strength!r}; valid: {valid}", strength=str(strength)
        ) from None
