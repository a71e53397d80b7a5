"""Fixtures of the cloak's unit tests: the stand-in net of :mod:`cloak_helpers` (imported
in the fixtures, so that without torch only the tests that use them are skipped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture()
def stand_in() -> Any:
    from cloak_helpers import MODEL_ID, SIZE, SPEC, StandIn, TinyNet

    return StandIn(MODEL_ID, SIZE, TinyNet().eval(), SPEC.threshold)


@pytest.fixture()
def make_cloaker(fake_pipeline: Any, stand_in: Any) -> Callable[[], Any]:
    """``make_cloaker()``: a :class:`~faceindex.cloak.cloaker.Cloaker` on the fake
    detector, attacking and measuring with the stand-in net."""
    from cloak_helpers import TinyEmbedder

    from faceindex.cloak.cloaker import Cloaker

    def make() -> Any:
        return Cloaker(fake_pipeline, models=[stand_in], measure=[TinyEmbedder(stand_in.module)])

    return make
