"""``verify --pairs`` and ``eval pairs`` embed each distinct photo once, however many
pairs name it, with the same lines (order, values, per-pair errors) as one verify a pair."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from cli_helpers import Photos, Run

from faceindex.detection.refine import SIDES
from faceindex.eval.protocols import evaluate_pairs_csv, pipeline_embed_fn
from faceindex.pipeline import Pipeline
from faceindex.testing import FakeDetector, FakeEmbedder
from faceindex.types import Face, FloatArray, ImageArray


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts of FakeDetector.detect calls on photos and on the face regions of the
    landmark refinement (resized to a longer side of one of its SIDES; the synthetic
    photos are 640 px), of FakeEmbedder.embed calls and of embedded faces."""
    counts: Counter[str] = Counter()
    detect, embed = FakeDetector.detect, FakeEmbedder.embed

    def counting_detect(self: FakeDetector, image: ImageArray) -> tuple[Face, ...]:
        counts["refine" if max(image.shape[:2]) in SIDES else "detect"] += 1
        return detect(self, image)

    def counting_embed(self: FakeEmbedder, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        counts["embed"] += 1
        counts["faces"] += len(faces)
        return embed(self, image, faces)

    monkeypatch.setattr(FakeDetector, "detect", counting_detect)
    monkeypatch.setattr(FakeEmbedder, "embed", counting_embed)
    return counts


PHOTOS = [
    "people/p1/0.png",
    "people/p1/1.png",
    "people/p1/2.png",
    "people/p2/0.png",
    "people/p2/1.png",
    "people/p2/2.png",
]


@pytest.mark.slow  # runs verify once per distinct pair to compare (seconds)
def test_verify_pairs_embeds_each_photo_once(cli: Run, photos: Photos, calls: Counter[str]) -> None:
    # Every ordered pair of the 6 photos, twice (60 pairs, 120 photo uses), plus pairs
    # naming a photo with no face, a broken file and a missing one, several times each,
    # and one photo spelled two ways.
    rows = list(itertools.permutations(PHOTOS, 2)) * 2
    bad = ["b.png", "x.jpg", "missing.png"]
    rows += [(b, p) for b in bad for p in PHOTOS[:2]] + [(PHOTOS[3], b) for b in bad]
    rows += [("people/p1/./0.png", "people/p1/1.png")]
    csv = photos.root / "pairs.csv"
    csv.write_text("a,b\n" + "".join(f"{a},{b}\n" for a, b in rows))

    r = cli("verify", "--pairs", csv, "--json")
    assert r.code == 8
    assert calls["embed"] == calls["faces"] == len(PHOTOS)  # not 2 x 70
    assert calls["detect"] == len(PHOTOS) + 1  # + the faceless photo (once)
    assert calls["refine"] == 2 * len(SIDES) * len(PHOTOS)  # each face refined once
    lines = r.lines
    assert [(x["a"], x["b"]) for x in lines] == rows

    # The same lines as verifying each pair on its own, errors included.
    calls.clear()
    first_lines = dict(zip(rows, lines, strict=True))  # each distinct pair once (same lines)
    for (a, b), line in first_lines.items():
        one = cli("verify", photos.root / a, photos.root / b, "--json").json
        if "error" in one:  # a pair's line has the error's code and message
            assert line["error"] == {k: one["error"][k] for k in ("code", "message")}
            assert "similarity" not in line
        else:
            assert (line["similarity"], line["match"]) == (one["similarity"], one["match"])
    assert calls["embed"] > 2 * len(PHOTOS)  # what the pairs would cost one by one
    errors = Counter(x["error"]["code"] for x in lines if "error" in x)
    assert errors == {"no_face": 3, "image_decode_error": 3, "not_found": 3}


def test_eval_pairs_embeds_each_photo_once(photos: Photos, calls: Counter[str]) -> None:
    rows = [
        (a, b, int(a.split("/")[1] == b.split("/")[1]))
        for a, b in itertools.permutations(PHOTOS, 2)
    ]
    rows += [("b.png", PHOTOS[0], 1), (PHOTOS[3], "b.png", 0)]
    csv = photos.root / "pairs.csv"
    csv.write_text("a,b,same\n" + "".join(f"{a},{b},{s}\n" for a, b, s in rows))
    pipeline = Pipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    result = evaluate_pairs_csv(csv, pipeline_embed_fn(pipeline), threshold=pipeline.threshold)
    assert calls["embed"] == calls["faces"] == len(PHOTOS)
    assert calls["detect"] == len(PHOTOS) + 1
    assert calls["refine"] == 2 * len(SIDES) * len(PHOTOS)
    assert (result.n_pairs, result.n_photos, result.n_failed_pairs) == (len(rows), 7, 2)
    assert result.failed_photos == ("b.png",)


def test_pairs_paths_are_one_photo_however_spelled(
    cli: Run, photos: Photos, calls: Counter[str], tmp_path: Path
) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text("a,b\npeople/p1/0.png,people/p1/1.png\n./people/p1/0.png,people/p1//1.png\n")
    r = cli("verify", "--pairs", csv, "--root", photos.root, "--json")
    assert r.code == 0 and [x["match"] for x in r.lines] == [True, True]
    assert calls["embed"] == 2
