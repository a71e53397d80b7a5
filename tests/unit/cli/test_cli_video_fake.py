"""watch and anonymize with fake backends on a small lossless synthetic clip."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Photos, Run

from faceindex.testing.synthetic import synthetic_photo


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    """15 frames at 10 fps: persons 1 and 2 for 1 s, then person 1 alone (FFV1, lossless,
    so the fake detector's boxes are exact)."""
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (640, 480))
    for k in range(15):
        frame = synthetic_photo([1, 2] if k < 10 else [1])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_watch(cli: Run, photos: Photos, clip: Path, gallery_path: Path, tmp_path: Path) -> None:
    r = cli("watch", clip)  # no gallery yet: a warning, and everyone is unknown
    assert r.code == 0 and "appeared" in r.out and "unknown" in r.out
    assert not gallery_path.exists()
    assert r.out.splitlines()[0].startswith("[00:00.000] appeared ")
    assert "15 frames in " in r.err
    cli("enroll", "Ann", photos.of(1))
    events_file = tmp_path / "events.jsonl"
    r = cli("watch", clip, "--json", "--events", events_file)
    assert r.code == 0
    events = r.lines
    assert sorted((e["event"], str(e["person"])) for e in events) == [
        ("appeared", "Ann"),
        ("appeared", "None"),
        ("left", "Ann"),
        ("left", "None"),
    ]
    for e in events:
        assert {"event", "track_id", "person", "similarity", "first_seen", "last_seen"} <= set(e)
        assert e["clock"] == "video" and len(e["bbox"]) == 4
    assert [line for line in events_file.read_text().splitlines()] == r.out.splitlines()
    r = cli("watch", clip, "--no-gallery", "--json", "--max-frames", "3")
    assert r.code == 0 and {e["person"] for e in r.lines} == {None}
    assert "3 frames in " in r.err
    assert {"watch"} <= {x["action"] for x in cli("audit", "--json").lines}


def test_watch_errors(cli: Run, clip: Path, tmp_path: Path) -> None:
    r = cli("watch", clip, "--gallery", tmp_path / "none.db")
    assert r.code == 6 and "no such gallery" in r.err and not (tmp_path / "none.db").exists()
    assert cli("watch", tmp_path / "nope.mp4", "--no-gallery").code == 6
    assert cli("watch", clip, "--detect-every", "0").code == 2
    assert cli("watch", clip, "--reconnect", "0").code == 2


def test_anonymize_photo(cli: Run, photos: Photos, tmp_path: Path) -> None:
    out = tmp_path / "all.png"
    r = cli("anonymize", photos.two, out, "--mode", "box")
    assert r.code == 0
    assert r.out == f"{out}: hid 2 faces in 1 of 1 frame (at most 2 per frame, box)\n"
    assert out.read_bytes() != photos.two.read_bytes()
    cli("enroll", "Ann", photos.of(1))
    keep = tmp_path / "keep.jpg"
    r = cli("anonymize", photos.two, keep, "--keep", "Ann", "--json")
    assert r.code == 0 and r.json["faces_hidden"] == 1 and r.json["per_frame"] == [1]
    assert [k["person"] for k in r.json["kept"]] == ["Ann"]


def test_anonymize_video(cli: Run, clip: Path, tmp_path: Path) -> None:
    r = cli("anonymize", clip, tmp_path / "anon.avi", "--mode", "pixelate", "--json")
    assert r.code == 0
    assert r.json["frames"] == 15 and r.json["mode"] == "pixelate"
    # --hold keeps hiding a face that just left for a few frames
    assert r.json["per_frame"][:10] == [2] * 10 and r.json["per_frame"][-1] == 1


def test_anonymize_errors(cli: Run, photos: Photos, clip: Path, tmp_path: Path) -> None:
    r = cli("anonymize", photos.two, tmp_path / "x.mp4")
    assert r.code == 3 and "both be photos" in r.err
    r = cli("anonymize", clip, tmp_path / "x.mkv")
    assert r.code == 3 and "must end in" in r.err
    assert cli("anonymize", photos.two, photos.two).code == 2
    assert cli("anonymize", photos.two, tmp_path / "x.png", "--margin", "5").code == 2
    r = cli("anonymize", photos.two, tmp_path / "x.png", "--keep", "Ann")
    assert r.code == 6 and "no such gallery" in r.err  # --keep needs a gallery
    cli("enroll", "Ann", photos.of(1))
    assert cli("anonymize", photos.two, tmp_path / "x.png", "--keep", "Nobody").code == 6
