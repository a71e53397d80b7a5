"""The pipeline's own rules (landmark refinement, restoration) are on by default and each
can be turned off from the environment, as the CLI and the server read it."""

from __future__ import annotations

import pytest

from faceindex.config import Settings
from faceindex.pipeline import Pipeline


@pytest.mark.parametrize(
    ("variable", "attribute"),
    [
        ("FACEINDEX_EMBEDDING__RESTORATION", "restoration"),
        ("FACEINDEX_EMBEDDING__LANDMARK_REFINEMENT", "landmark_refinement"),
    ],
)
def test_settings_can_turn_it_off(
    monkeypatch: pytest.MonkeyPatch, variable: str, attribute: str
) -> None:
    monkeypatch.setenv(variable, "false")
    monkeypatch.setenv("FACEINDEX_DETECTION__DETECTOR", "fake")
    monkeypatch.setenv("FACEINDEX_EMBEDDING__EMBEDDER", "fake")
    assert getattr(Pipeline.from_settings(Settings.from_env()), attribute) is False
    assert getattr(Pipeline.from_settings(Settings()), attribute) is True
