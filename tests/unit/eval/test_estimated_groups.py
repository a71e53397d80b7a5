"""``--groups auto``: groups estimated per person (gallery) or per photo (pairs), with fake
faces and fake attribute answers, so every group and every undecided case is known."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from faceindex.attributes import AgeEstimate, FaceAttributes, Gender, GenderEstimate
from faceindex.attributes.groups import photo_group
from faceindex.eval.estimated_groups import (
    cached_embed_fn,
    estimate_person_groups,
    estimate_photo_groups,
    split_groupings,
)
from faceindex.eval.groups import ESTIMATED_CAVEAT
from faceindex.eval.protocols import LabelledPair, evaluate_gallery, evaluate_pairs
from faceindex.eval.report import render_html
from faceindex.types import BBox, Embedding, Face, ImageArray

# Per person: the gender of each photo (by name order) and an apparent age.
#   ann: F on 9 of 10 photos (90% >= 80%: F); bea: F/M 6/4 (undecided); carl: M, 55;
#   dave: M, no face on his only photo (undecided in both groupings); ed: M, 22.
GENDERS = {
    "ann": "F" * 9 + "M",
    "bea": "FFFFFFMMMM",
    "carl": "MMMM",
    "dave": "M",
    "ed": "MMMM",
}
AGES = {"ann": 35.0, "bea": 41.0, "carl": 55.0, "dave": 30.0, "ed": 22.0}
PEOPLE = sorted(GENDERS)
_BASE = {p: np.random.default_rng(i).normal(size=16) for i, p in enumerate(sorted(GENDERS))}


def _attrs(person: str, k: int, score: float = 0.99) -> FaceAttributes:
    label = Gender.FEMALE if GENDERS[person][k] == "F" else Gender.MALE
    age = AGES[person]
    return FaceAttributes(
        gender=GenderEstimate(label, score), age=AgeEstimate(age, age - 5, age + 5, 0.1)
    )


def _embedding(path: Path) -> Embedding:
    noise = np.random.default_rng(zlib.crc32(path.name.encode())).normal(size=16)
    return Embedding((_BASE[path.parent.name] + 0.6 * noise).astype(np.float32), "fake-v1")


class FakeModels:
    """``subject_fn`` and ``estimate_fn``: dave's photos have no face; photo ``k`` of a
    person reads as ``GENDERS[person][k]``; photos named ``unsure-*`` score 0.6."""

    def __init__(self) -> None:
        self.seen: list[Path] = []

    def subject(self, path: Path) -> tuple[ImageArray, Face] | None:
        self.seen.append(path)
        if path.parent.name == "dave":
            return None
        face = Face(BBox(0, 0, 10, 10), 0.9, embedding=_embedding(path))
        image = np.zeros((4, 4, 3), np.uint8)  # the photo, encoded for ``estimate``
        image[0, 0] = (PEOPLE.index(path.parent.name), int(path.stem.split("-")[-1]), 0)
        image[0, 1, 0] = path.stem.startswith("unsure")
        return image, face

    def estimate(self, image: ImageArray, face: Face) -> FaceAttributes:
        person, k = PEOPLE[int(image[0, 0, 0])], int(image[0, 0, 1])
        return _attrs(person, k, 0.6 if image[0, 1, 0] else 0.99)


def make_tree(root: Path) -> Path:
    for person, genders in GENDERS.items():
        (root / person).mkdir(parents=True)
        for k in range(len(genders)):
            (root / person / f"{k:02d}.png").touch()
    return root


def test_person_groups_vote_and_say_who_is_undecided(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "people")
    fake = FakeModels()
    estimated, found = estimate_person_groups(
        root, fake.subject, fake.estimate, faces_per_person=10
    )
    assert estimated.unit == "person" and estimated.faces_per_person == 10
    assert estimated.groups("gender") == {"ann": "F", "carl": "M", "ed": "M"}
    assert estimated.undecided("gender") == ["bea", "dave"]
    assert estimated.groups("age") == {"ann": "30-49", "bea": "30-49", "carl": "50+", "ed": "<30"}
    assert estimated.undecided("age") == ["dave"] and estimated.no_face == ("dave",)
    assert estimated.counts("gender") == {"F": 1, "M": 2}
    inferred = estimated.inferred["gender"]["ann"]
    assert (inferred.share, inferred.faces) == (0.9, 10)
    # Each photo was visited once; its embedding is reused by the evaluation.
    assert len(fake.seen) == len(set(fake.seen)) == sum(len(g) for g in GENDERS.values())
    embed = cached_embed_fn(found, lambda p: pytest.fail(f"{p} embedded twice"))
    assert embed(root / "ann" / "00.png") == found[root / "ann" / "00.png"][0]
    assert embed(root / "dave" / "00.png") is None


def test_faces_per_person_caps_the_photos_looked_at(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "people")
    fake = FakeModels()
    estimated, _ = estimate_person_groups(root, fake.subject, fake.estimate, faces_per_person=4)
    # bea's first 4 photos are all F: decided at this cap
    assert estimated.groups("gender")["bea"] == "F"
    assert {p.name for p in fake.seen if p.parent.name == "ann"} == {f"0{k}.png" for k in range(4)}


def test_photo_groups_and_unsure_scores(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "people")
    (root / "ann" / "unsure-03.png").touch()
    fake = FakeModels()
    photos = {
        "ann/00.png": root / "ann" / "00.png",
        "ann/09.png": root / "ann" / "09.png",
        "ann/unsure-03.png": root / "ann" / "unsure-03.png",
        "dave/00.png": root / "dave" / "00.png",
        "ed/missing.png": root / "ed" / "missing.png",
    }
    estimated, _ = estimate_photo_groups(photos, fake.subject, fake.estimate)
    assert estimated.unit == "photo"
    assert estimated.groups("gender") == {"ann/00.png": "F", "ann/09.png": "M"}
    assert estimated.undecided("gender") == ["ann/unsure-03.png", "dave/00.png"]
    assert estimated.no_face == ("dave/00.png",)
    assert "ed/missing.png" not in estimated.inferred["gender"]  # left to the evaluation
    assert photo_group(FaceAttributes(), "age").group is None


def test_gallery_result_says_groups_were_estimated(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "people")
    fake = FakeModels()
    estimated, found = estimate_person_groups(root, fake.subject, fake.estimate)
    groups, more = split_groupings(estimated)
    assert groups == estimated.groups("gender") and list(more) == ["age"]
    result = evaluate_gallery(
        root,
        cached_embed_fn(found, lambda p: pytest.fail("not cached")),
        threshold=0.5,
        enrol_per_person=2,
        unknown_people=["ed"],
        groups=groups,
        more_groups=more,
        estimated_groups=estimated,
    )
    d = json.loads(result.to_json())
    assert d["groups_estimated"] is True
    est = d["group_estimation"]
    assert est["estimated"] is True and est["caveat"] == ESTIMATED_CAVEAT
    assert est["groupings"]["gender"]["undecided"] == ["bea", "dave"]
    assert est["groupings"]["gender"]["assigned"]["bea"] == {
        "group": None,
        "share": 0.6,
        "faces": 10,
    }
    assert [g["grouping"] for g in d["more_groups"]] == ["age"]
    age = d["more_groups"][0]
    assert {g["group"] for g in age["groups"]["groups"]} == {"30-49", "50+"}
    assert {g["group"] for g in age["open_set_groups"]["groups"]} == {"30-49", "50+", "<30"}
    assert {g["group"] for g in d["groups"]["groups"]} == {"F", "M"}
    page = render_html(result, [])
    assert "Groups: ESTIMATED, not labels" in page and "estimated apparent-age band" in page
    assert "bea" in page.split("Groups: ESTIMATED")[1]


def test_pairs_result_per_photo_groups(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "people")
    fake = FakeModels()
    names = ["ann/00.png", "ann/01.png", "ann/09.png", "carl/00.png", "carl/01.png", "ed/00.png"]
    pairs = [
        LabelledPair(a, b, a.split("/")[0] == b.split("/")[0])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    estimated, found = estimate_photo_groups(
        {n: root / n for n in names}, fake.subject, fake.estimate
    )
    groups, more = split_groupings(estimated)
    result = evaluate_pairs(
        pairs,
        cached_embed_fn(found, lambda p: pytest.fail("not cached")),
        threshold=0.5,
        root=root,
        groups=groups,
        more_groups=more,
        estimated_groups=estimated,
    )
    assert result.groups is not None
    rows = {r.group: r for r in result.groups.groups}
    # ann/09 reads M: its genuine pairs with ann/00 and ann/01 are cross-group
    assert (rows["F"].n_genuine, rows["F"].n_impostor) == (1, 0)
    assert (rows["M"].n_genuine, rows["M"].n_impostor) == (1, 5)
    assert result.to_dict()["group_estimation"]["unit"] == "photo"
    without = evaluate_pairs(
        pairs, cached_embed_fn(found, lambda p: None), threshold=0.5, root=root
    )
    d = without.to_dict()
    assert d["groups_estimated"] is False and d["group_estimation"] is None
    assert d["more_groups"] == []


@pytest.mark.integration  # renders real plots with matplotlib (seconds)
def test_report_files_name_each_estimated_grouping(tmp_path: Path) -> None:
    from faceindex.eval.report import write_report

    root = make_tree(tmp_path / "people")
    fake = FakeModels()
    estimated, found = estimate_person_groups(root, fake.subject, fake.estimate)
    groups, more = split_groupings(estimated)
    result = evaluate_gallery(
        root,
        cached_embed_fn(found, lambda p: None),
        threshold=0.5,
        enrol_per_person=2,
        unknown_people=["ed"],
        groups=groups,
        more_groups=more,
        estimated_groups=estimated,
    )
    names = {f.name for f in write_report(result, tmp_path / "out")}
    assert {"groups.png", "groups_age.png", "groups_age_open_set.png"} <= names
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Per-group FMR/FNMR by estimated gender" in page
    assert "Per-group FPIR/FNIR by estimated apparent-age band" in page
    assert json.loads((tmp_path / "out" / "report.json").read_text())["groups_estimated"]
