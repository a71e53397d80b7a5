"""enroll, identify, people, index, reembed, audit with fake backends."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cli_helpers import Photos, Run
from PIL import Image


def test_enroll_and_identify(cli: Run, photos: Photos, gallery_path: Path) -> None:
    r = cli("enroll", "Ann", photos.of(1, 0), photos.of(1, 1), "--json")
    assert r.code == 0 and gallery_path.is_file()
    assert set(r.json) == {"person", "photos"}
    assert r.json["person"]["name"] == "Ann" and r.json["person"]["templates"] == 2
    assert [p["status"] for p in r.json["photos"]] == ["accepted", "accepted"]
    assert {"source", "status", "reasons", "template_id", "quality", "flags"} <= set(
        r.json["photos"][0]
    )
    r = cli("enroll", "Bob", photos.two)  # two faces: rejected with its reason, in words
    assert r.code == 8
    assert r.out.splitlines() == [
        f"{photos.two}: rejected: several faces of similar size (crop the photo to one person)",
        "Bob: 0 accepted, 1 rejected; 0 templates in the gallery",
    ]
    r = cli("enroll", "Ann", photos.of(1, 2))
    assert r.out.splitlines()[-1] == "Ann: 1 accepted, 0 rejected; 3 templates in the gallery"
    r = cli("enroll", "Ann", photos.of(1, 0))
    assert r.code == 0 and "duplicate" in r.out

    r = cli("identify", photos.two, photos.stranger, "--json")
    assert r.code == 0
    first, second = r.lines
    assert first["path"] == str(photos.two)
    faces = {f["person"]: f for f in first["faces"]}
    assert set(faces) == {"Ann", None}
    ann = faces["Ann"]
    assert set(ann) == {"bbox", "person", "similarity", "decision", "best", "runner_up"}
    assert ann["decision"] == "identified" and set(ann["best"]) == {"id", "name", "similarity"}
    assert ann["best"]["name"] == "Ann" and ann["similarity"] == ann["best"]["similarity"]
    assert len(ann["bbox"]) == 4
    (stranger,) = second["faces"]
    assert stranger["person"] is None and stranger["decision"] == "unknown"
    r = cli("identify", photos.of(1, 2))
    assert r.out.splitlines()[0] == f"{photos.of(1, 2)}: 1 face"
    assert r.out.splitlines()[1].startswith("  Ann similarity ")


def test_identify_errors(cli: Run, photos: Photos, tmp_path: Path) -> None:
    cli("enroll", "Ann", photos.of(1))
    r = cli("identify", photos.broken, "--json")
    assert r.code == 3 and r.json["error"]["code"] == "image_decode_error"
    assert cli("identify", tmp_path / "nope.png").code == 6
    r = cli("identify", photos.broken, photos.of(1), "--json")
    assert r.code == 8 and ["error" in x for x in r.lines] == [True, False]
    # a gallery of another model: each photo fails with the conflict (no model is loaded)
    r = cli("identify", photos.of(1), "--embedder", "sface", "--json")
    assert r.code == 10 and r.json["error"]["code"] == "embedding_model_mismatch"
    assert "re-embed" in r.err


def test_enroll_folders(cli: Run, photos: Photos, tmp_path: Path) -> None:
    (photos.people / "p2" / "group.png").write_bytes(photos.two.read_bytes())
    (photos.people / "p2" / "notes.txt").write_text("not a photo")
    (photos.people / "empty").mkdir()
    (photos.people / "p2" / "blank.png").write_bytes(photos.blank.read_bytes())
    (photos.people / "p2" / "broken.jpg").write_bytes(photos.broken.read_bytes())
    r = cli("enroll", "--folders", photos.people)
    assert r.code == 8 and r.out == ""
    lines = r.err.splitlines()
    assert lines[0].startswith("faceindex: created a new gallery: ")
    assert lines[1].startswith("9 photos of 2 people in ")
    assert lines[1].endswith("photos/s): 6 accepted, 0 already enrolled, 3 rejected")
    p2 = photos.people / "p2"
    assert lines[2:] == [  # each rejected photo, and why in words (no codes)
        "not enrolled (3 photos):",
        f"  {p2 / 'blank.png'}: no face found",
        f"  {p2 / 'broken.jpg'}: not a readable photo",
        f"  {p2 / 'group.png'}: several faces of similar size (crop the photo to one person)",
    ]
    r = cli("enroll", "--folders", photos.people, "--json")  # resumable: all known now
    assert [(x["person"], x["status"]) for x in r.lines].count(("p1", "duplicate")) == 3
    assert "6 already enrolled" in r.err and "created" not in r.err
    assert cli("enroll", "--folders", tmp_path / "nope").code == 6
    (tmp_path / "bare").mkdir()
    r = cli("enroll", "--folders", tmp_path / "bare")
    assert r.code == 3 and "no person folders with photos" in r.err


@pytest.mark.slow  # about a second: the fast tier stays fast
def test_people(
    cli: Run, photos: Photos, gallery_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("enroll", "Ann", photos.of(1, 0), photos.of(1, 1))
    cli("enroll", "Bob", photos.of(2, 0))
    r = cli("people", "list", "--json")
    assert [x["name"] for x in r.lines] == ["Ann", "Bob"]
    assert {"id", "name", "external_id", "metadata", "templates", "photos"} <= set(r.lines[0])
    r = cli("people", "list", "--search", "an")
    assert r.out.startswith("#1") and "Ann" in r.out and "Bob" not in r.out
    assert r.err == f"2 people in {gallery_path}\n"
    r = cli("people", "show", "Ann", "--json")
    assert r.json["name"] == "Ann" and len(r.json["template_list"]) == 2
    assert set(r.json["template_list"][0]) == {
        "id", "model_id", "quality", "source", "encrypted", "created_at"
    }  # fmt: skip
    r = cli("people", "show", "#2")
    assert r.out.startswith("#2 Bob (external id -)")
    r = cli("people", "rename", "Ann", "Anne", "--json")
    assert r.code == 0 and r.json["name"] == "Anne"
    assert cli("people", "rename", "Bob", "Bobby").out == "#2 is now Bobby\n"
    assert cli("people", "show", "Ann").code == 6
    r = cli("people", "remove", "Anne")
    assert r.code == 2 and "--yes" in r.err  # no terminal to confirm on
    monkeypatch.setattr("sys.stdin", _Tty("n\n"))
    r = cli("people", "remove", "Anne")
    assert r.code == 0 and "nothing deleted" in r.err
    monkeypatch.setattr("sys.stdin", _Tty("y\n"))
    r = cli("people", "remove", "Anne")
    assert r.code == 0 and r.out.endswith("deleted Anne (#1) and 2 templates\n")
    r = cli("people", "remove", "Bobby", "--yes", "--json")
    assert r.json == {"deleted": 2, "templates": 1}
    assert cli("people", "remove", "Bobby", "--yes").code == 6
    assert cli("people", "list", "--json").out == ""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_index_reembed_audit(cli: Run, photos: Photos, tmp_path: Path) -> None:
    cli("enroll", "Ann", photos.of(1, 0), photos.of(1, 1), "--keep-photos")
    r = cli("index", "rebuild", "--json")
    assert r.code == 0 and r.json["templates"] == 2 and r.json["backend"] == "auto"
    assert set(r.json) == {"templates", "backend", "seconds"}
    r = cli("index", "rebuild", "--backend", "exact")
    assert r.out.startswith("index rebuilt: 2 templates (exact) in ")
    r = cli("reembed", "--json")
    assert r.code == 0 and r.json == {"from": "fake-v1", "to": "fake-v1", "templates": 2}
    r = cli("identify", photos.of(1, 2), "--json")
    assert r.lines[0]["faces"][0]["person"] == "Ann"

    r = cli("audit", "--json")
    actions = [x["action"] for x in r.lines]
    assert {"enroll", "identify"} <= set(actions)
    assert {"at", "actor", "action", "person_id", "decision"} <= set(r.lines[0])
    r = cli("audit", "--action", "identify", "--json")
    assert {x["action"] for x in r.lines} == {"identify"}
    r = cli("audit", "--person", "Ann", "--limit", "1", "--json")
    assert len(r.lines) == 1 and r.lines[0]["person_id"] == 1
    r = cli("audit", "--action", "enroll")
    assert r.code == 0 and "enroll" in r.out.splitlines()[0]
    assert cli("audit", "--person", "Nobody").code == 6


def test_broken_gallery_is_a_storage_error(cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("garbage" * 100)
    assert cli("people", "list", "--gallery", bad).code == 9


def test_stats(cli: Run, photos: Photos) -> None:
    cli("enroll", "Ann", photos.of(1, 0))
    cli("enroll", "Bob", photos.of(2, 0))
    r = cli("stats", "--json")
    assert r.code == 0
    assert r.json["people"] == 2 and r.json["templates"] == 2 and r.json["model"] == "fake-v1"
    # The fake model ships a fixed threshold and no calibration: nothing is promised.
    assert r.json["threshold_rule"] == "fixed" and r.json["threshold"] == 0.9
    assert r.json["expected_fpir"] is None and r.json["expected_fnir"] is None
    text = cli("stats").out
    assert "2 people, 2 templates, model fake-v1" in text and "threshold 0.9000 (fixed)" in text
    assert "unknown (no calibration for this model)" in text


def test_enrol_refuses_a_face_of_another_person_unless_forced(
    cli: Run, photos: Photos, tmp_path: Path
) -> None:
    assert cli("enroll", "Ann", photos.of(1, 0), photos.of(1, 1)).code == 0
    assert cli("enroll", "Bob", photos.of(2, 0)).code == 0
    r = cli("enroll", "Bob", photos.of(1, 2))  # Ann's face, enrolled as Bob
    assert r.code == 8
    first = r.out.splitlines()[0]
    assert first.startswith(f"{photos.of(1, 2)}: rejected: looks like Ann (#1, similarity ")
    assert "--force" in first
    r = cli("people", "show", "Bob", "--json")
    assert r.json["templates"] == 1  # nothing was added
    r = cli("enroll", "Bob", photos.of(1, 2), "--force", "--json")
    assert r.code == 0
    (photo,) = r.json["photos"]
    assert photo["status"] == "accepted" and photo["conflict"]["name"] == "Ann"
    assert "matches_other_person:1" in photo["flags"]
    bulk = tmp_path / "bulk" / "Bob"  # bulk enrolment refuses it the same way
    bulk.mkdir(parents=True)
    with Image.open(photos.of(1, 0)) as im:  # Ann's face in a file not enrolled yet
        im.save(bulk / "a.png", compress_level=0)
    r = cli("enroll", "--folders", str(bulk.parent), "--json")
    assert r.code == 8 and r.lines[0]["reasons"] == ["matches_other_person"]
    assert "matches another enrolled person" in r.err
    r = cli("enroll", "--folders", str(bulk.parent), "--force", "--json")
    assert r.code == 0 and r.lines[0]["status"] == "accepted"


def test_people_are_named_regardless_of_case(cli: Run, photos: Photos) -> None:
    assert cli("enroll", "Ann Lee", photos.of(1, 0)).code == 0
    r = cli("people", "show", "ann lee", "--json")
    assert r.code == 0 and r.json["name"] == "Ann Lee"
    r = cli("enroll", "ANN LEE", photos.of(1, 1), "--json")  # adds to Ann Lee
    assert r.code == 0 and r.json["person"]["name"] == "Ann Lee"
    assert r.json["person"]["templates"] == 2
    assert cli("people", "show", "Bob").code == 6


def test_an_unknown_face_says_who_came_closest(cli: Run, photos: Photos) -> None:
    assert cli("enroll", "Ann", photos.of(1, 0)).code == 0
    r = cli("identify", photos.stranger)
    (line,) = r.out.splitlines()[1:]
    assert line.startswith("  unknown (closest: Ann 0.") and "not similar enough" in line
