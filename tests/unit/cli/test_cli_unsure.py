"""``--reject-below QUALITY`` on ``verify`` and ``identify``: a face under the quality floor
gets the typed decision ``unsure``, never a silent match or non-match (fake backends)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from cli_helpers import Photos, Run

from faceindex.cli.exit_codes import MEANINGS, NO_MATCH, OK, UNSURE
from faceindex.io.image import load_image
from faceindex.testing import degrade
from faceindex.testing.degrade import soft_detect
from faceindex.testing.fakes import FakeDetector


@pytest.fixture(autouse=True)
def unsure_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake detector, less confident on blurred photos (as YuNet is: the quality score
    is the detector's confidence), so a blurred photo's face scores low."""
    monkeypatch.setattr(FakeDetector, "detect", soft_detect(FakeDetector.detect))


def blurred(src: Path, dst: Path) -> Path:
    """A photo the fake detector still finds, with a quality score near 0 (too blurry)."""
    image = degrade.gaussian_blur(load_image(src), 5.0)
    cv2.imwrite(str(dst), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return dst


def test_verify_unsure_below_the_floor(cli: Run, photos: Photos, tmp_path: Path) -> None:
    soft = blurred(photos.of(1, 1), tmp_path / "soft.png")
    r = cli("verify", photos.of(1, 0), soft, "--json")  # no floor: the usual answer
    assert r.code == OK and r.json["match"] is True and r.json["decision"] == "match"
    assert r.json["quality"] < 0.1  # the pair's quality: the worse face's
    r = cli("verify", photos.of(1, 0), soft, "--reject-below", "0.3", "--json")
    assert r.code == UNSURE == 12
    assert r.json["decision"] == "unsure" and r.json["match"] is None
    assert r.json["similarity"] > r.json["threshold"]  # it would have matched: not silently
    r = cli("verify", soft, photos.of(2, 0), "--reject-below", "0.3")
    assert r.code == UNSURE and r.out.startswith("unsure (face quality 0.0")
    r = cli("verify", photos.of(1, 0), photos.of(2, 0), "--reject-below", "0.3", "--json")
    assert r.code == NO_MATCH and r.json["decision"] == "no_match" and r.json["match"] is False
    r = cli("verify", photos.of(1, 0), photos.of(1, 1), "--reject-below", "0.3", "--json")
    assert r.code == OK and r.json["decision"] == "match"
    assert cli("verify", photos.of(1, 0), soft, "--reject-below", "1.5").code == 2
    assert cli("verify", photos.of(1, 0), soft, "--reject-below", "x").code == 2
    assert any(code == UNSURE and "unsure" in text for code, text in MEANINGS)


def test_verify_pairs_unsure(cli: Run, photos: Photos) -> None:
    blurred(photos.of(1, 1), photos.root / "soft.png")
    csv = photos.root / "pairs.csv"
    csv.write_text("a,b\npeople/p1/0.png,soft.png\npeople/p1/0.png,people/p2/0.png\n")
    r = cli("verify", "--pairs", csv, "--json")
    assert r.code == 0 and [x["match"] for x in r.lines] == [True, False]
    assert "decision" not in r.lines[0]  # the line's fields are unchanged without a floor
    r = cli("verify", "--pairs", csv, "--reject-below", "0.3", "--json")
    assert r.code == 0
    assert [(x["decision"], x["match"]) for x in r.lines] == [
        ("unsure", None),
        ("no_match", False),
    ]
    assert r.lines[0]["quality"] < 0.1
    assert "2 pairs: 0 match, 1 no match, 1 unsure, 0 failed" in r.err
    r = cli("verify", "--pairs", csv, "--reject-below", "0.3")
    assert "unsure (face quality too low)" in r.out.splitlines()[0]


def test_identify_unsure_below_the_floor(cli: Run, photos: Photos, tmp_path: Path) -> None:
    assert cli("enroll", "Ann", photos.of(1, 0), photos.of(1, 2)).code == 0
    soft = blurred(photos.of(1, 1), tmp_path / "soft.png")
    r = cli("identify", soft, "--json")
    assert r.code == 0 and r.json["faces"][0]["person"] == "Ann"
    r = cli("identify", soft, photos.of(1, 1), "--reject-below", "0.3", "--json")
    assert r.code == 0
    (unsure,), (named,) = (x["faces"] for x in r.lines)
    assert unsure["decision"] == "unsure" and unsure["person"] is None
    assert unsure["best"]["name"] == "Ann"  # who came closest is still said
    assert named["decision"] == "identified" and named["person"] == "Ann"
    r = cli("identify", soft, "--reject-below", "0.3")
    assert "is under the floor asked for; closest: Ann" in r.out
