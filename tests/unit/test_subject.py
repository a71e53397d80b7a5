"""The subject of a photo: its most prominent face, not merely its largest."""

from __future__ import annotations

import pytest

from faceindex.detection.subject import most_prominent, prominence
from faceindex.types import BBox, Face


def _face(x1: float, y1: float, side: float) -> Face:
    return Face(BBox(x1, y1, x1 + side, y1 + side), 0.9)


def test_a_centred_face_beats_a_larger_one_in_the_corner() -> None:
    bystander = _face(0, 0, 120)  # largest, in the top-left corner
    subject = _face(440, 330, 100)  # centred in 1000 x 800
    faces = [bystander, subject]
    assert most_prominent(faces, 1000, 800) == 1
    assert prominence(subject, 1000, 800) > prominence(bystander, 1000, 800)


def test_of_two_centred_faces_the_larger_wins_and_ties_keep_the_first() -> None:
    small, large = _face(450, 350, 80), _face(420, 320, 160)
    assert most_prominent([small, large], 1000, 800) == 1
    assert most_prominent([small, small], 1000, 800) == 0


def test_a_face_in_the_far_corner_counts_for_nothing() -> None:
    assert prominence(_face(950, 750, 100), 1000, 800) == pytest.approx(0.0, abs=1e-9)
    assert prominence(_face(0, 0, 10), 0, 0) == 0.0


def test_no_faces_is_an_error() -> None:
    with pytest.raises(ValueError):
        most_prominent([], 640, 480)
