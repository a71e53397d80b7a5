"""``faceindex watch`` and ``faceindex anonymize`` end to end through their CLI handlers."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
import video_synth as synth

from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.main import main
from faceindex.gallery import Gallery
from faceindex.pipeline import Pipeline

#: Set by the ``shared_pipeline`` fixture: the pipeline the commands get instead of
#: loading models of their own.
SHARED: dict[str, Pipeline] = {}


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``faceindex ARGV`` in-process: exit code, stdout, stderr."""
    pipeline = SHARED.get("pipeline")
    code = main(list(argv), context_factory=lambda args: CliContext(args, pipeline=pipeline))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def shared_pipeline(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline) -> Pipeline:
    """Reuse the session's loaded models instead of loading them per command."""
    monkeypatch.setitem(SHARED, "pipeline", pipeline)
    return pipeline


def detected_frames(path: Path, pipeline: Pipeline) -> list[int]:
    capture = cv2.VideoCapture(str(path))
    counts = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        counts.append(len(pipeline.detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))))
    capture.release()
    return counts


# -- watch ------------------------------------------------------------------------------


def test_watch_json_events_output_and_unknown_crops(
    capsys: pytest.CaptureFixture[str],
    clips: dict[str, Path],
    gallery_path: Path,
    tmp_path: Path,
    pipeline: Pipeline,
) -> None:
    # the real command path: settings from flags, models loaded by the command itself
    events_file, annotated, unknown = tmp_path / "ev.jsonl", tmp_path / "ann.avi", tmp_path / "u"
    code, out, err = call(
        capsys,
        "watch",
        str(clips["crossing"]),
        "--gallery",
        str(gallery_path),
        "--json",
        "--events",
        str(events_file),
        "--output",
        str(annotated),
        "--save-unknown",
        str(unknown),
    )
    assert code == OK
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["appeared", "appeared", "left", "left"]
    assert sorted(str(e["person"]) for e in events[:2]) == ["Barack Obama", "None"]
    for e in events:
        assert set(e) >= {"event", "track_id", "person", "similarity", "first_seen", "last_seen"}
        assert len(e["bbox"]) == 4 and e["clock"] == "video"
    assert [json.loads(x) for x in events_file.read_text().splitlines()] == events
    assert "70 frames" in err
    assert detected_frames(annotated, pipeline).__len__() == 70
    (crop,) = sorted(unknown.glob("*.jpg"))  # Biden's best frame, ready to enrol
    assert len(pipeline.detect(crop)) == 1


def test_watch_human_output(
    capsys: pytest.CaptureFixture[str],
    clips: dict[str, Path],
    gallery_path: Path,
    shared_pipeline: Pipeline,
) -> None:
    code, out, _ = call(capsys, "watch", str(clips["pan"]), "--gallery", str(gallery_path))
    assert code == OK
    lines = out.splitlines()
    assert len(lines) == 2 and "appeared" in lines[0] and "Barack Obama" in lines[0]
    assert lines[0].startswith("[00:00.000]") and "left" in lines[1]


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Collector.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Collector.bodies
    server.shutdown()
    server.server_close()


def test_watch_webhook_and_a_dead_webhook(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    clips: dict[str, Path],
    gallery_path: Path,
    shared_pipeline: Pipeline,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, bodies = webhook
    code, _, _ = call(
        capsys, "watch", str(clips["pan"]), "--gallery", str(gallery_path), "--webhook", url
    )
    assert code == OK
    assert [(b["event"], b["person"]) for b in bodies] == [
        ("appeared", "Barack Obama"),
        ("left", "Barack Obama"),
    ]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    s.close()
    with caplog.at_level(logging.WARNING):
        code, out, _ = call(
            capsys, "watch", str(clips["pan"]), "--gallery", str(gallery_path), "--webhook", dead
        )
    assert code == OK and "appeared" in out  # events still reach stdout
    assert "webhook POST failed" in caplog.text


def test_watch_errors_are_typed_and_fast(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    clips: dict[str, Path],
    shared_pipeline: Pipeline,
) -> None:
    assert call(capsys, "watch", str(tmp_path / "nope.mp4"), "--no-gallery")[0] == 6
    code, _, err = call(capsys, "watch", str(clips["pan"]), "--gallery", str(tmp_path / "none.db"))
    assert code == 6 and "no such gallery" in err
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"rtsp://127.0.0.1:{s.getsockname()[1]}/"
    s.close()
    code, out, _ = call(
        capsys, "watch", url, "--no-gallery", "--reconnect", "2", "--timeout", "1", "--json"
    )
    assert code == 3 and json.loads(out)["error"]["code"] == "stream_unavailable"
    # no display: --preview warns and carries on
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level(logging.WARNING):
        code, _, _ = call(
            capsys,
            "watch",
            str(clips["no_faces"]),
            "--no-gallery",
            "--preview",
            "--max-frames",
            "5",
        )
    assert code == OK and "no display" in caplog.text


# -- anonymize --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["blur", "pixelate", "box"])
def test_anonymize_video_hides_every_face(
    capsys: pytest.CaptureFixture[str],
    clips: dict[str, Path],
    tmp_path: Path,
    shared_pipeline: Pipeline,
    mode: str,
) -> None:
    out_path = tmp_path / f"anon-{mode}.mp4"
    code, out, _ = call(
        capsys, "anonymize", str(clips["crossing"]), str(out_path), "--mode", mode, "--json"
    )
    assert code == OK
    report = json.loads(out)
    assert report["frames"] == 70 and report["mode"] == mode and report["tracks"] == 2
    assert report["per_frame"] == [2] * 70
    assert detected_frames(out_path, shared_pipeline) == [0] * 70


def test_anonymize_video_keeps_consenting_person(
    capsys: pytest.CaptureFixture[str],
    clips: dict[str, Path],
    tmp_path: Path,
    gallery: Gallery,
    gallery_path: Path,
    shared_pipeline: Pipeline,
) -> None:
    out_path = tmp_path / "keep.avi"
    code, out, _ = call(
        capsys,
        "anonymize",
        str(clips["crossing"]),
        str(out_path),
        "--keep",
        "Barack Obama",
        "--gallery",
        str(gallery_path),
        "--json",
    )
    assert code == OK
    report = json.loads(out)
    assert [k["person"] for k in report["kept"]] == ["Barack Obama"]
    assert report["per_frame"] == [1] * 70  # Biden hidden on every frame
    capture = cv2.VideoCapture(str(out_path))
    for i in range(70):
        ok, bgr = capture.read()
        assert ok
        if i % 10:
            continue
        faces = shared_pipeline.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        assert len(faces) == 1  # only Obama is left to find
        vectors = np.stack([f.embedding.vector for f in faces if f.embedding is not None])
        (answer,) = gallery.identify_vectors(vectors)
        assert (
            answer.person is not None
            and answer.person.person_id == gallery.person("Barack Obama").id
        )


def test_anonymize_photo_with_keep(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    gallery_path: Path,
    shared_pipeline: Pipeline,
) -> None:
    two = synth.FIXTURES / "two_people.jpg"
    out_all, out_keep = tmp_path / "all.png", tmp_path / "keep.jpg"
    code, out, _ = call(capsys, "anonymize", str(two), str(out_all), "--mode", "pixelate")
    assert code == OK and "hid 2 faces in 1 of 1 frame" in out
    assert shared_pipeline.detect(out_all) == ()
    code, out, _ = call(
        capsys,
        "anonymize",
        str(two),
        str(out_keep),
        "--keep",
        "Barack Obama",
        "--gallery",
        str(gallery_path),
        "--json",
    )
    report = json.loads(out)
    assert code == OK and report["faces_hidden"] == 1 and report["per_frame"] == [1]
    assert [k["person"] for k in report["kept"]] == ["Barack Obama"]
    (left,) = shared_pipeline.detect(out_keep)
    assert left.bbox.x1 < 300  # Obama is on the left of two_people.jpg, Biden on the right


def test_anonymize_input_errors(
    capsys: pytest.CaptureFixture[str],
    clips: dict[str, Path],
    tmp_path: Path,
    gallery_path: Path,
    shared_pipeline: Pipeline,
) -> None:
    two = str(synth.FIXTURES / "two_people.jpg")
    code, _, err = call(capsys, "anonymize", two, str(tmp_path / "x.mp4"))
    assert code == 3 and "both be photos" in err
    code, _, err = call(capsys, "anonymize", str(clips["pan"]), str(tmp_path / "x.mkv"))
    assert code == 3 and "must end in" in err
    code, _, _ = call(capsys, "anonymize", two, str(tmp_path / "x.jpg"), "--keep", "Nobody",
                      "--gallery", str(gallery_path))  # fmt: skip
    assert code == 6
    code, _, err = call(capsys, "anonymize", two, str(tmp_path / "x.jpg"), "--keep",
                        "Barack Obama", "--gallery", str(tmp_path / "none.db"))  # fmt: skip
    assert code == 6 and "no such gallery" in err
    assert not (tmp_path / "none.db").exists()


class _Flaky:
    """The real detector, except that it misses every face on some calls (frames)."""

    name = "flaky"

    def __init__(self, inner: Any, misses: set[int]) -> None:
        self.inner, self.misses, self.calls = inner, misses, 0

    def detect(self, image: np.ndarray) -> tuple[Any, ...]:
        call, self.calls = self.calls, self.calls + 1
        return () if call in self.misses else self.inner.detect(image)

    def warm_up(self) -> None:
        self.inner.warm_up()


def test_anonymize_tracking_fills_detector_misses(
    clips: dict[str, Path], tmp_path: Path, pipeline: Pipeline
) -> None:
    from faceindex.video.anonymize import HideMode, anonymize_video

    flaky = Pipeline(
        detector=_Flaky(pipeline.detector, {0, 1, 20, 21, 22}), embedder=pipeline.embedder
    )
    out_path = tmp_path / "filled.mp4"
    report = anonymize_video(flaky, clips["pan"], out_path, mode=HideMode.BOX, hold_s=0.2)
    assert report.per_frame == (1,) * 60  # frames 0-1 back-filled, 20-22 predicted
    assert detected_frames(out_path, pipeline) == [0] * 60
