"""Shared fixtures of the video tests: synthetic clips (made once per session) and a
gallery with Barack Obama enrolled from obama.jpg and obama2.jpg (the clips show obama3.jpg,
a different photo, and Joe Biden, who is not enrolled)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import video_synth as synth

from faceindex.gallery import Gallery, open_gallery
from faceindex.pipeline import Pipeline


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    scenes = {
        "pan": synth.pan(),
        "zoom": synth.zoom(),
        "crossing": synth.crossing(),
        "leave_and_return": synth.leave_and_return(),
        "no_faces": synth.no_faces(),
    }
    return {name: synth.write_video(folder / f"{name}.mp4", f) for name, f in scenes.items()}


@pytest.fixture(scope="session")
def gallery_path(tmp_path_factory: pytest.TempPathFactory, pipeline: Pipeline) -> Path:
    path = tmp_path_factory.mktemp("gallery") / "video.db"
    with open_gallery(path, pipeline=pipeline) as g:
        report = g.enroll(
            "Barack Obama", [synth.FIXTURES / "obama.jpg", synth.FIXTURES / "obama2.jpg"]
        )
        assert len(report.accepted) == 2
    return path


@pytest.fixture()
def gallery(gallery_path: Path, pipeline: Pipeline) -> Iterator[Gallery]:
    g = open_gallery(gallery_path, pipeline=pipeline)
    yield g
    g.close()


@pytest.fixture()
def identifier(gallery: Gallery) -> Gallery:
    return gallery


@pytest.fixture()
def obama_id(gallery: Gallery) -> int:
    return gallery.person("Barack Obama").id
