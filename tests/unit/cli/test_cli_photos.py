"""detect, verify, verify --pairs, models, eval: JSON shapes, human text, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Photos, Run


def test_detect_json_and_human(cli: Run, photos: Photos) -> None:
    r = cli("detect", photos.two, photos.of(1), "--json")
    assert r.code == 0 and r.err == ""
    first, second = r.lines
    assert first["path"] == str(photos.two) and len(first["faces"]) == 2
    assert len(second["faces"]) == 1
    face = first["faces"][0]
    assert set(face) == {"bbox", "score", "landmarks", "quality"}
    assert len(face["bbox"]) == 4 and face["bbox"][0] < face["bbox"][2]
    assert len(face["landmarks"]) == 5
    assert {"score", "sharpness", "brightness", "yaw", "pitch", "roll", "issues"} <= set(
        face["quality"]
    )
    r = cli("detect", photos.two, photos.blank)
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0] == f"{photos.two}: 2 faces" and lines[1].startswith("  face 0 box (")
    assert lines[-1] == f"{photos.blank}: 0 faces"


def test_detect_errors(cli: Run, photos: Photos, tmp_path: Path) -> None:
    r = cli("detect", photos.broken, "--json")
    assert r.code == 3
    assert r.json["path"] == str(photos.broken)
    assert r.json["error"]["code"] == "image_decode_error" and set(r.json["error"]) == {
        "code",
        "message",
    }
    assert r.err.startswith(f"{photos.broken}: error: ")
    assert cli("detect", tmp_path / "nope.png").code == 6
    r = cli("detect", photos.broken, photos.of(1), "--json")  # a batch: the rest still runs
    assert r.code == 8 and ["error" in x for x in r.lines] == [True, False]
    r = cli("detect", photos.of(1), "--detector", "retina")
    assert r.code == 7 and "fake" in r.err  # the error lists the valid detectors


def test_verify(cli: Run, photos: Photos) -> None:
    r = cli("verify", photos.of(1, 0), photos.of(1, 1), "--json")
    assert r.code == 0 and r.json["match"] is True
    assert {"similarity", "match", "threshold", "model", "face_a", "face_b"} <= set(r.json)
    assert r.json["faces_a"] == [r.json["bbox_a"]] and r.json["face_a"] == 0
    assert r.json["model"] == "fake-v1"
    r = cli("verify", photos.of(1), photos.of(2))
    assert r.code == 1 and r.out.startswith("different people: similarity ")
    r = cli("verify", photos.of(1), photos.of(2), "--threshold", "-1", "--json")
    assert r.code == 0 and r.json["threshold"] == -1
    r = cli("verify", photos.two, photos.of(1, 2), "--json")  # the subject of each is used
    assert r.json["faces_a"][r.json["face_a"]] == r.json["bbox_a"]
    assert len(r.json["faces_a"]) == 2 and len(r.json["faces_b"]) == 1
    r = cli("verify", photos.blank, photos.of(1), "--json")
    assert r.code == 4 and r.json["error"]["code"] == "no_face" and str(photos.blank) in r.err


def test_verify_a_group_photo_picks_or_searches_faces(cli: Run, photos: Photos) -> None:
    """photos.two shows persons 1 and 2: each face can be picked, or A's person searched."""
    found = cli("verify", photos.of(1, 2), photos.two, "--search", "--json")
    assert found.code == 0 and found.json["match"] is True
    ann = found.json["face_b"]
    other = 1 - ann
    r = cli("verify", photos.of(1, 2), photos.two, "--face-b", str(other), "--json")
    assert r.code == 1 and r.json["match"] is False and r.json["face_b"] == other
    assert r.json["bbox_b"] == r.json["faces_b"][other]
    r = cli("verify", photos.of(1, 2), photos.two, "--face-b", str(ann))
    assert r.code == 0 and r.out.startswith("same person")
    assert f"B: compared face {ann} of 2 at (" in r.out
    assert cli("verify", photos.of(1), photos.two, "--face-b", "5").code == 3
    assert cli("verify", photos.of(1), photos.two, "--face-b", "-1").code == 2
    assert cli("verify", photos.of(1), photos.two, "--face-b", "0", "--search").code == 2


def test_verify_pairs(cli: Run, photos: Photos, tmp_path: Path) -> None:
    csv = photos.root / "pairs.csv"
    csv.write_text(
        "a,b,same,note\n"
        "people/p1/0.png,people/p1/1.png,1,x\n"
        "people/p1/0.png,people/p2/0.png,0,y\n"
        "people/p1/0.png,x.jpg,1,broken\n"
        "missing.png,people/p1/0.png,1,w\n"
        "people/p1/0.png,,1,empty\n"
        "b.png,people/p1/0.png,1,no face\n"
    )
    r = cli("verify", "--pairs", csv, "--json")  # --root defaults to the CSV's folder
    assert r.code == 8
    rows = r.lines
    assert [x.get("match") for x in rows] == [True, False, None, None, None, None]
    assert set(rows[0]) == {"a", "b", "similarity", "match"}
    assert [x["error"]["code"] for x in rows[2:]] == [
        "image_decode_error",
        "not_found",
        "invalid_input",
        "no_face",
    ]
    assert rows[4]["error"]["message"] == "line 6: empty path"
    assert "6 pairs: 1 match, 1 no match, 4 failed (threshold 0.900, model fake-v1)" in r.err
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("A,B\npeople/p2/0.png,people/p2/2.png\n")
    r = cli("verify", "--pairs", elsewhere, "--root", photos.root)
    assert r.code == 0 and r.out.endswith("match\n") and "no match" not in r.out


def test_verify_pairs_bad_csv(cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("left,right\nx.jpg,y.jpg\n")
    r = cli("verify", "--pairs", bad, "--json")
    assert r.code == 3 and "'a' and 'b'" in r.err and r.json["error"]["code"] == "invalid_input"
    assert cli("verify", "--pairs", tmp_path / "none.csv").code == 6
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    assert cli("verify", "--pairs", binary).code == 3


def test_models(cli: Run) -> None:
    r = cli("models", "--json")
    assert r.code == 0
    assert set(r.json) == {"detectors", "default_detector", "embedders", "default_embedder"}
    assert "yunet" in r.json["detectors"] and r.json["default_detector"] == "yunet"
    names = [e["name"] for e in r.json["embedders"]]
    assert "fusion" in names and r.json["default_embedder"] == "fusion"
    r = cli("models")
    assert r.out.startswith("detectors: ") and "(default yunet)" in r.out


@pytest.mark.integration  # renders the report's plots with matplotlib (seconds)
def test_eval_pairs_and_gallery(cli: Run, photos: Photos, tmp_path: Path) -> None:
    csv = photos.people / "pairs.csv"
    csv.write_text(
        "a,b,same\np1/0.png,p1/1.png,1\np2/0.png,p2/1.png,1\np1/0.png,p2/0.png,0\n"
        "p1/2.png,p2/2.png,0\n"
    )
    out = tmp_path / "report"
    r = cli("eval", "pairs", csv, "--out", out, "--json")
    assert r.code == 0
    v = r.json["verification"]
    assert (v["n_genuine"], v["n_impostor"], v["auc"]) == (2, 2, 1.0)
    assert {"report.html", "report.json", "roc.png"} <= {p.name for p in out.iterdir()}
    assert f"report: {out / 'report.html'}" in r.err
    (photos.people / "p3").mkdir()
    for variant in range(2):
        (photos.people / "p3" / f"{variant}.png").write_bytes(photos.of(1, variant).read_bytes())
    r = cli("eval", "gallery", photos.people, "--enrol", "1", "--out", tmp_path / "g")
    assert r.code == 0 and "identification (mean-top2): rank-1" in r.out
    assert json.loads((tmp_path / "g" / "report.json").read_text())["identification"]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx.png,y.png\n")
    r = cli("eval", "pairs", bad, "--out", tmp_path / "x")
    assert r.code == 3 and "'a', 'b' and 'same'" in r.err
    assert cli("eval", "pairs", tmp_path / "none.csv").code == 6
    assert cli("eval", "gallery", tmp_path / "nowhere").code == 6


def test_require_live_refuses_what_liveness_rejects(
    cli: Run, photos: Photos, gallery_path: Path
) -> None:
    """The fake photos' flat squares are no live skin: passive liveness rejects them."""
    r = cli("verify", photos.of(1, 0), photos.of(1, 1), "--require-live", "--json")
    assert r.code == 11 and r.json["error"]["code"] == "spoof_detected"
    assert str(photos.of(1, 0)) in r.json["error"]["message"]
    assert cli("verify", photos.of(1, 0), photos.of(1, 1)).code == 0  # without: compared
    assert cli("enroll", "Ann", photos.of(1, 0)).code == 0
    r = cli("identify", photos.of(1, 1), "--require-live", "--json")
    assert r.code == 11 and r.json["error"]["code"] == "spoof_detected"
    r = cli("identify", photos.of(1, 1), photos.blank, "--require-live", "--json")
    assert r.code == 8  # per photo: the spoof refused, the photo without a face answered
    assert "error" in r.lines[0] and r.lines[1]["faces"] == []
