"""A gallery a newcomer can trust, on real photos: the wrong person refused at enrolment
(unless forced, then flagged), names regardless of case, faces too small said so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceindex.errors import FaceTooSmallError
from faceindex.gallery import EnrolStatus, Gallery, open_gallery
from faceindex.io.image import load_image
from faceindex.pipeline import Pipeline
from faceindex.types import IdentDecision


@pytest.fixture()
def gallery(tmp_path: Path, pipeline: Pipeline) -> Iterator[Gallery]:
    with open_gallery(tmp_path / "g.db", pipeline=pipeline) as g:
        yield g


def biden_from_group(fixtures_dir: Path) -> np.ndarray:
    """Biden's face cut from two_people.jpg (he is on the right): a second photo of him."""
    group = load_image(fixtures_dir / "two_people.jpg")
    return np.ascontiguousarray(group[0:220, 390:600])


def test_biden_enrolled_as_obama_is_refused_unless_forced(
    gallery: Gallery, fixtures_dir: Path
) -> None:
    photos = [fixtures_dir / "obama.jpg", fixtures_dir / "obama2.jpg"]
    obama = gallery.enroll("Barack Obama", photos)
    biden = gallery.enroll("Joe Biden", [biden_from_group(fixtures_dir)])
    assert obama.person is not None and biden.person is not None
    assert biden.outcomes[0].status is EnrolStatus.ACCEPTED

    (refused,) = gallery.enroll("Barack Obama", [fixtures_dir / "biden.jpg"]).outcomes
    assert refused.status is EnrolStatus.REJECTED
    assert refused.reasons == ("matches_other_person",)
    assert refused.conflict is not None
    assert refused.conflict.person_id == biden.person.id
    assert refused.conflict.name == "Joe Biden" and refused.conflict.similarity > 0.8
    assert gallery.person("Barack Obama").templates == 2

    (forced,) = gallery.enroll("Barack Obama", [fixtures_dir / "biden.jpg"], force=True).outcomes
    assert forced.status is EnrolStatus.ACCEPTED
    flag = f"matches_other_person:{biden.person.id}"
    assert forced.flags == (flag,)
    flagged = [t for t in gallery.templates("Barack Obama") if t.flags]
    assert [t.id for t in flagged] == [forced.template_id] and flagged[0].flags == (flag,)
    (entry,) = gallery.audit(action="enroll", person_id=obama.person.id, limit=1)
    assert entry["decision"] == "forced"
    assert entry["details"]["conflict"]["person_id"] == biden.person.id


def test_a_new_person_matching_an_enrolled_one_is_refused(
    gallery: Gallery, fixtures_dir: Path
) -> None:
    gallery.enroll("Barack Obama", [fixtures_dir / "obama.jpg"])
    report = gallery.enroll("Mystery Man", [fixtures_dir / "obama3.jpg"])
    (outcome,) = report.outcomes
    assert outcome.reasons == ("matches_other_person",) and report.person is None
    assert outcome.conflict is not None and outcome.conflict.name == "Barack Obama"
    # and a genuine second photo, named in another case, joins the same person
    same = gallery.enroll("barack obama", [fixtures_dir / "obama3.jpg"])
    assert same.outcomes[0].status is EnrolStatus.ACCEPTED and same.outcomes[0].flags == ()
    assert same.person is not None and same.person.name == "Barack Obama"
    assert gallery.count_people() == 1 and same.person.templates == 2


def test_an_unknown_face_still_names_the_closest_person(
    gallery: Gallery, fixtures_dir: Path
) -> None:
    gallery.enroll("Barack Obama", [fixtures_dir / "obama.jpg"])
    (face,) = gallery.identify(fixtures_dir / "biden.jpg")
    assert face.decision is IdentDecision.UNKNOWN and face.person is None
    assert face.best is not None and face.best.name == "Barack Obama"
    assert face.similarity is not None and 0.2 < face.similarity < gallery.threshold


def small_obama(fixtures_dir: Path, shrink: int) -> np.ndarray:
    """obama_small.jpg shrunk ``shrink`` times and pasted into a grey 640x480 frame."""
    rgb = load_image(fixtures_dir / "obama_small.jpg")
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (round(w / shrink), round(h / shrink)), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[200 : 200 + small.shape[0], 300 : 300 + small.shape[1]] = small
    return frame


def test_a_face_below_the_size_gate_is_reported_as_too_small(
    gallery: Gallery, pipeline: Pipeline, fixtures_dir: Path
) -> None:
    tiny = small_obama(fixtures_dir, 8)  # a face of ~14 px
    assert pipeline.detect(tiny) == ()
    small = pipeline.small_face(tiny)
    assert small is not None and 10 <= min(small.bbox.width, small.bbox.height) < 20
    (outcome,) = gallery.enroll("Barack Obama", [tiny]).outcomes
    assert outcome.reasons == ("face_too_small",)
    assert outcome.message is not None
    assert re.fullmatch(r"face too small \(1\d px, need 20\)", outcome.message)
    with pytest.raises(FaceTooSmallError, match=r"face too small \(1\d px, need 20\)") as caught:
        pipeline.subject_face(tiny)
    assert caught.value.code == "face_too_small" and caught.value.details["min_face_px"] == 20
    blank = np.full((480, 640, 3), 128, np.uint8)  # no face at all is still no_face
    (none,) = gallery.enroll("Nobody", [blank]).outcomes
    assert none.reasons == ("no_face",) and none.message is None


def test_upscaling_finds_small_faces_in_a_mid_sized_frame(
    pipeline: Pipeline, fixtures_dir: Path
) -> None:
    # A 20 px face (1/6) is found at the first scale; an 11-14 px one only by the retry at
    # twice the scale (see faceindex.detection.yunet.detector), then reported as too small.
    (found,) = pipeline.detect(small_obama(fixtures_dir, 6))
    assert min(found.bbox.width, found.bbox.height) >= 19
    for shrink in (8, 10):
        small = pipeline.small_face(small_obama(fixtures_dir, shrink))
        assert small is not None and small.score > 0.8, shrink
        assert 290 < small.bbox.x1 < 340 and 190 < small.bbox.y1 < 230  # where it was pasted


def test_a_photo_unlike_the_persons_own_is_refused_with_nobody_else_enrolled(
    gallery: Gallery, fixtures_dir: Path
) -> None:
    """Biden's photo put into Obama's folder, with nobody else enrolled to match it."""
    obama = gallery.enroll("Barack Obama", [fixtures_dir / "obama.jpg"])
    assert obama.person is not None and obama.outcomes[0].status is EnrolStatus.ACCEPTED
    (wrong, right) = gallery.enroll(
        "Barack Obama", [fixtures_dir / "biden.jpg", fixtures_dir / "obama2.jpg"]
    ).outcomes
    assert wrong.status is EnrolStatus.REJECTED and wrong.reasons == ("unlike_this_person",)
    assert wrong.message is not None and "does not match" in wrong.message
    assert right.status is EnrolStatus.ACCEPTED  # his own second photo is welcome
    assert gallery.person("Barack Obama").templates == 2

    (forced,) = gallery.enroll("Barack Obama", [fixtures_dir / "biden.jpg"], force=True).outcomes
    assert forced.status is EnrolStatus.ACCEPTED and forced.flags == ("unlike_this_person",)
    (entry,) = gallery.audit(action="enroll", person_id=obama.person.id, limit=1)
    assert entry["decision"] == "forced"
