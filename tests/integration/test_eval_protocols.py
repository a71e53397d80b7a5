"""Evaluation protocols: input rules with fake embeddings, then the real pipeline on fixtures."""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.errors import EmbeddingModelMismatchError, InvalidInputError, NotFoundError
from faceindex.eval.protocols import (
    EmbedFn,
    LabelledPair,
    evaluate_gallery,
    evaluate_pairs,
    evaluate_pairs_csv,
    list_people,
    load_groups,
    person_of,
    pipeline_embed_fn,
    read_pairs_csv,
    split_gallery,
)
from faceindex.search import AggregationRule
from faceindex.types import Embedding

# ------------------------------------------------------------------ inputs and rules


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def test_read_pairs_csv(tmp_path: Path) -> None:
    p = write(
        tmp_path / "p.csv", " A ,b,Same\nx/1.png,x/2.png,1\nx/1.png,y/1.png,false\n", "utf-8-sig"
    )
    assert read_pairs_csv(p) == [
        LabelledPair("x/1.png", "x/2.png", True),
        LabelledPair("x/1.png", "y/1.png", False),
    ]
    for text, match in [
        ("a,b\nx,y\n", "'same'"),
        ("a,b,same\nx,y,maybe\n", "line 2"),
        ("a,b,same\nx,,1\n", "empty path"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            read_pairs_csv(write(tmp_path / "bad.csv", text))
    with pytest.raises(NotFoundError):
        read_pairs_csv(tmp_path / "missing.csv")


def test_load_groups(tmp_path: Path) -> None:
    assert load_groups(write(tmp_path / "g.json", '{"ann": "F", "bob": 1}')) == {
        "ann": "F",
        "bob": "1",
    }
    with pytest.raises(InvalidInputError, match="person -> group"):
        load_groups(write(tmp_path / "g.json", '["F"]'))
    with pytest.raises(InvalidInputError, match="JSON"):
        load_groups(write(tmp_path / "g.json", "{oops"))


def test_person_is_the_folder_holding_the_photo() -> None:
    assert person_of("ann/1.png") == "ann"
    assert person_of("lfw/ann/1.png") == "ann" and person_of("/data/ann/1.png") == "ann"
    assert person_of("ann\\1.png") == "ann" and person_of("1.png") is None


def fake(dim: int = 8, model_id: str = "fake-v1") -> EmbedFn:
    def embed(path: Path) -> Embedding | None:
        if path.stem == "noface":
            return None
        base = np.random.default_rng(zlib.crc32(path.parent.name.encode())).normal(size=dim)
        noise = np.random.default_rng(zlib.crc32(str(path).encode())).normal(size=dim)
        return Embedding((base + 0.5 * noise).astype(np.float32), model_id)

    return embed


PHOTOS = {f"p{i}": [f"p{i}/{k}.png" for k in range(6)] for i in range(10)}


def test_split_is_deterministic_and_documented() -> None:
    a = split_gallery(PHOTOS, enrol_per_person=2, unknown_fraction=0.3, seed=1)
    assert a == split_gallery(dict(reversed(PHOTOS.items())), enrol_per_person=2, seed=1)
    assert len(a.unknown) == 3 and len(a.enrolled) == 7
    assert {p for p, _ in a.enrol} == set(a.enrolled) and len(a.enrol) == 14
    assert len(a.probes) == 3 * 6 + 7 * 4
    assert not {f for _, f in a.enrol} & {f for _, f in a.probes}
    b = split_gallery(PHOTOS, enrol_per_person=2, unknown_fraction=0.3, seed=2)
    assert (a.unknown, a.enrol) != (b.unknown, b.enrol)
    # Adding a person changes nobody else's photos.
    more = split_gallery(
        {**PHOTOS, "zz": ["zz/1.png"]}, enrol_per_person=2, unknown_people=a.unknown, seed=1
    )
    assert set(a.enrol) <= set(more.enrol)


def test_split_edge_rules() -> None:
    photos = {"solo": ["solo/1.png"], "pair": ["pair/1.png", "pair/2.png"], "x": ["x/1.png"]}
    s = split_gallery(photos, enrol_per_person=5, unknown_people=["x"])
    assert s.enrol == (("pair", s.enrol[0][1]), ("solo", "solo/1.png"))  # one photo kept back
    assert [p for p, _ in s.probes] == ["pair", "x"]
    assert len(split_gallery(photos, unknown_fraction=0.01).unknown) == 1  # at least one
    assert split_gallery(photos, unknown_fraction=0.0).unknown == ()
    with pytest.raises(InvalidInputError, match="not in the folder"):
        split_gallery(photos, unknown_people=["nobody"])
    with pytest.raises(InvalidInputError, match="stay enrolled"):
        split_gallery(photos, unknown_people=list(photos))
    with pytest.raises(InvalidInputError):
        split_gallery(photos, enrol_per_person=0)


def test_pairs_with_fakes_and_groups_by_path(tmp_path: Path) -> None:
    pairs = [
        LabelledPair("a/1.png", "a/2.png", True),
        LabelledPair("a/1.png", "b/1.png", False),
        LabelledPair("a/noface.png", "a/1.png", True),
        LabelledPair("flat.png", "a/1.png", False),
    ]
    groups = {"a": "G", "b": "G", "flat.png": "G"}
    r = evaluate_pairs(pairs, fake(), threshold=0.5, groups=groups, root=tmp_path)
    assert r.failed_photos == ("a/noface.png",) and r.n_failed_pairs == 1 and r.n_photos == 5
    assert r.groups is not None and r.groups.n_excluded == 0
    assert (r.groups.groups[0].n_genuine, r.groups.groups[0].n_impostor) == (2, 2)
    assert json.loads(r.to_json())["groups"]["groups"][0]["group"] == "G"
    with pytest.raises(InvalidInputError, match="genuine"):
        evaluate_pairs(pairs[:1], fake(), threshold=0.5)
    with pytest.raises(EmbeddingModelMismatchError):
        evaluate_pairs(
            pairs[:2], lambda p: fake(model_id=p.parent.name)(p), threshold=0.5, root=tmp_path
        )


def test_missing_photos_are_reported_before_any_work(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "p.csv", "a,b,same\na/1.png,a/2.png,1\n")

    def never(path: Path) -> Embedding | None:
        raise AssertionError("embedded before checking files")

    with pytest.raises(NotFoundError, match="2 photos"):
        evaluate_pairs_csv(csv_path, never, threshold=0.5)


# ------------------------------------------------------------------ the real pipeline

FIXTURE_PEOPLE = {
    "obama": ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_small.jpg"],
    "biden": ["biden.jpg"],
    "alex": ["alex-lacamoire.png"],
    "lin": ["lin-manuel-miranda.png"],
}
GROUPS = {"obama": "A", "biden": "A", "alex": "B", "lin": "B"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """A folder per person from the fixture photos, plus one photo without a face."""
    root = tmp_path_factory.mktemp("people")
    for person, photos in FIXTURE_PEOPLE.items():
        (root / person).mkdir()
        for photo in photos:
            shutil.copy(fixtures_dir / photo, root / person / photo)
    Image.new("RGB", (160, 160), (128, 128, 128)).save(root / "lin" / "noface.png")
    return root


@pytest.fixture(scope="module")
def real_embed(pipeline) -> Callable[[Path], Embedding | None]:  # type: ignore[no-untyped-def]
    """The real pipeline, each photo embedded once for the whole module."""
    embed = pipeline_embed_fn(pipeline)
    cache: dict[str, Embedding | None] = {}

    def cached(path: Path) -> Embedding | None:
        key = f"{path.parent.name}/{path.name}"
        if key not in cache:
            cache[key] = embed(path)
        return cache[key]

    return cached


def test_pairs_on_fixture_photos(tree: Path, real_embed: EmbedFn, pipeline) -> None:  # type: ignore[no-untyped-def]
    photos = [f"{p}/{f}" for p, fs in FIXTURE_PEOPLE.items() for f in fs] + ["lin/noface.png"]
    lines = ["a,b,same"] + [
        f"{a},{b},{int(person_of(a) == person_of(b))}"
        for i, a in enumerate(photos)
        for b in photos[i + 1 :]
    ]
    csv_path = write(tree / "pairs.csv", "\n".join(lines) + "\n")
    r = evaluate_pairs_csv(csv_path, real_embed, threshold=pipeline.threshold, groups=GROUPS)
    v = r.verification
    assert r.model_id == pipeline.model_id and r.failed_photos == ("lin/noface.png",)
    assert (r.n_pairs, r.n_photos, r.n_failed_pairs) == (28, 8, 7)
    assert (v.n_genuine, v.n_impostor) == (7, 21)  # 6 obama pairs + lin vs noface
    assert v.fmr == 0.0  # no impostor reaches the calibrated threshold
    assert v.fnmr == pytest.approx(1 / 7)  # only the face-less photo's pair is missed
    # Every obama pair outscores every impostor; the failed genuine pair (-inf) ties with
    # the 6 failed impostor pairs: AUC = (6 * 21 + 0.5 * 6) / (7 * 21).
    assert v.auc == pytest.approx(129 / 147)
    assert len(v.tar_at_far) == 3 and not v.tar_at_far[0].measurable
    g = r.groups
    assert g is not None and [x.group for x in g.groups] == ["A", "B"]
    assert (g.groups[0].n_genuine, g.groups[0].n_impostor) == (6, 4)  # obama/biden
    assert g.groups[0].fnmr == 0.0 and g.groups[1].fnmr == 1.0  # B: lin vs noface only
    json.loads(r.to_json())


def test_gallery_on_fixture_photos(tree: Path, real_embed: EmbedFn, pipeline) -> None:  # type: ignore[no-untyped-def]
    assert list_people(tree)["lin"] == ["lin/lin-manuel-miranda.png", "lin/noface.png"]
    for rule in AggregationRule:
        r = evaluate_gallery(
            tree,
            real_embed,
            threshold=pipeline.threshold,
            enrol_per_person=1,
            unknown_people=["alex"],
            rule=rule,
            groups=GROUPS,
            target_fpir=0.5,
        )
        m = r.identification
        # lin's 2 photos: one enrols (if it is the face-less one, lin has no template).
        assert r.split.enrolled == ("biden", "lin", "obama") and r.split.unknown == ("alex",)
        assert (m.n_mated, m.n_nonmated) == (4, 1)  # 3 obama + 1 lin; alex
        assert len(r.failed_enrol) + len(r.failed_probes) == 1
        obama = [i for i, label in enumerate(r.split.probes) if label[0] == "obama"]
        assert len(obama) == 3
        assert m.rank1 == pytest.approx(3 / 4)  # obama found; lin's probe or template failed
        assert m.at_threshold.fpir == 0.0 and m.at_threshold.misidentification_rate == 0.0
        assert m.at_target is not None and r.verification is not None
        assert r.open_set_groups is not None and r.groups is not None
        data = json.loads(r.to_json())
        assert data["split"]["unknown"] == ["alex"] and data["rule"] == str(rule)
