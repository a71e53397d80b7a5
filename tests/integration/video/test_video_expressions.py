"""``watch --expressions`` on a clip made from fixture photos: a smiling face, one frame of
a talking face (the model reads it ``angry``), then the talking face for good. The
expression events name ``happy`` first, then the lasting change; the single frame never
makes an event."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import video_synth as synth
from test_video_cli import SHARED, call

from faceindex.attributes import ExpressionEstimate
from faceindex.io.video import open_video
from faceindex.pipeline import Pipeline
from faceindex.types import Face, ImageArray
from faceindex.video.events import Clock, EventType, ExpressionEvent
from faceindex.video.recognition import NobodyIdentifier
from faceindex.video.watch import Watcher, WatchOptions, analyzer_expression_fn

SWITCH, FLICKER = 35, 17


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("expressions")
    frames = synth.expression_change(switch=SWITCH, flicker=FLICKER)
    return synth.write_video(folder / "expressions.mp4", frames)


def test_watch_reports_smoothed_expression_changes(clip: Path, pipeline: Pipeline) -> None:
    model = analyzer_expression_fn()
    raw: dict[int, str] = {}  # frame -> the model's own label of the (one) face
    frame_of_call: list[int] = []

    def recording(image: ImageArray, faces: Sequence[Face]) -> Sequence[ExpressionEstimate | None]:
        found = model(image, faces)
        for estimate in found:
            if estimate is not None:
                raw[frame_of_call[-1]] = str(estimate.label)
        return found

    options = WatchOptions(detect_every=1, expressions=True, expression_every=1)
    with open_video(clip) as video:
        watcher = Watcher(
            pipeline,
            NobodyIdentifier(),
            options=options,
            source=str(clip),
            clock=Clock.VIDEO,
            source_fps=video.info.fps,
            expression_fn=recording,
        )
        events = []
        for f in video.frames():
            frame_of_call.append(f.index)
            events += watcher.process(f.image, f.timestamp, f.index).events
        events += watcher.finish()
    # the model itself flickers: the single talking frame reads differently
    assert raw[FLICKER] != "happy" and raw[FLICKER - 1] == raw[FLICKER + 1] == "happy"
    after = [raw[i] for i in range(SWITCH + 5, 75) if i in raw]
    lasting = max(set(after), key=after.count)
    assert lasting != "happy"
    kinds = [(str(e.event), e.track_id) for e in events]
    assert kinds[0] == ("appeared", 1) and kinds[-1] == ("left", 1)
    changes = [e for e in events if isinstance(e, ExpressionEvent)]
    assert [e.label for e in changes] == ["happy", lasting]
    first, second = changes
    assert first.event is EventType.EXPRESSION and first.track_id == 1
    assert first.frame < FLICKER or first.frame > FLICKER + 12  # never on the flicker
    assert 0.5 <= first.t < SWITCH / 25
    assert second.frame > SWITCH and second.t >= SWITCH / 25 + 0.5
    assert first.as_dict()["event"] == "expression" and first.as_dict()["label"] == "happy"
    assert watcher.stats.expression_estimates >= 60


@pytest.fixture()
def shared_pipeline(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline) -> Pipeline:
    """The commands reuse the session's loaded models (as in test_video_cli)."""
    monkeypatch.setitem(SHARED, "pipeline", pipeline)
    return pipeline


def test_cli_watch_expressions_json(
    clip: Path, shared_pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(
        capsys,
        "watch",
        str(clip),
        "--no-gallery",
        "--expressions",
        "--expression-every",
        "2",
        "--detect-every",
        "1",
        "--json",
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    expressions = [e for e in lines if e["event"] == "expression"]
    assert expressions and expressions[0]["label"] == "happy"
    assert set(expressions[0]) == {
        "event",
        "track_id",
        "person",
        "person_id",
        "label",
        "score",
        "t",
        "frame",
        "clock",
        "source",
    }
    assert lines[0]["event"] == "appeared"
    assert "expression estimates" in err
    code, out, err = call(capsys, "watch", str(clip), "--no-gallery", "--expressions")
    assert code == 0 and "expression" in out and ": happy (" in out
    assert call(capsys, "watch", str(clip), "--expression-every", "0")[0] == 2
