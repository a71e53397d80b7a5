"""Frame sources: files, paced files, HTTP streams, and every way they can fail (fast)."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import video_synth as synth

from faceindex.cli.exit_codes import exit_code_for
from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.io.video import (
    FileVideo,
    LiveVideo,
    ReconnectPolicy,
    SourceKind,
    StreamUnavailableError,
    VideoDecodeError,
    open_video,
    parse_source,
    redact,
)

FAST = ReconnectPolicy(
    max_attempts=3, initial_backoff_s=0.05, open_timeout_s=1.0, read_timeout_s=1.0
)


def grey_frames(n: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    w, h = size
    return [np.full((h, w, 3), 10 + 4 * i, np.uint8) for i in range(n)]


def test_parse_source_and_redact() -> None:
    assert parse_source(0) == (SourceKind.DEVICE, 0)
    assert parse_source("2") == (SourceKind.DEVICE, 2)
    assert parse_source("rtsp://cam/stream")[0] is SourceKind.STREAM
    assert parse_source("HTTP://cam/x.mjpg")[0] is SourceKind.STREAM
    assert parse_source("file:///tmp/a.mp4") == (SourceKind.FILE, "/tmp/a.mp4")
    assert parse_source(Path("clip.mp4")) == (SourceKind.FILE, "clip.mp4")
    assert redact("rtsp://admin:secret@10.0.0.5/live") == "rtsp://***@10.0.0.5/live"


@pytest.mark.parametrize(("suffix", "fourcc"), [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_file_frames_and_timestamps(tmp_path: Path, suffix: str, fourcc: str) -> None:
    path = synth.write_video(tmp_path / f"g{suffix}", grey_frames(12), fps=20, fourcc=fourcc)
    with open_video(path) as video:
        assert isinstance(video, FileVideo)
        info = video.info
        assert (info.width, info.height, info.fps, info.live) == (160, 120, 20.0, False)
        frames = list(video.frames())
    assert [f.index for f in frames] == list(range(12))
    assert [f.timestamp for f in frames] == pytest.approx([i / 20 for i in range(12)])
    assert frames[0].image.shape == (120, 160, 3) and frames[0].image.dtype == np.uint8


def test_broken_files_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(InvalidInputError, match="not a file"):
        open_video(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="zero bytes"):
        open_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="not a video"):
        open_video(text)
    start = time.monotonic()
    with pytest.raises(VideoDecodeError, match="not a video"):
        open_video(text, realtime=True)
    assert time.monotonic() - start < 2  # no reconnection attempts for a file
    clip = synth.write_video(tmp_path / "clip.mp4", grey_frames(30))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])  # no moov atom
    with pytest.raises(VideoDecodeError):
        open_video(truncated)
    # a valid container holding zero frames
    import cv2

    zero = tmp_path / "zero.avi"
    writer = cv2.VideoWriter(str(zero), cv2.VideoWriter.fourcc(*"MJPG"), 25, (64, 48))
    writer.release()
    with pytest.raises(VideoDecodeError, match="no frames"):
        open_video(zero)
    assert exit_code_for(VideoDecodeError("x")) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    clip = synth.write_video(tmp_path / "clip.mp4", grey_frames(5))
    clip.chmod(0)
    with pytest.raises(InvalidInputError, match="permission denied"):
        open_video(clip)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_refused_stream_gives_up_after_bounded_attempts(scheme: str) -> None:
    url = f"{scheme}://user:pw@127.0.0.1:{_closed_port()}/live"
    start = time.monotonic()
    with pytest.raises(StreamUnavailableError) as info:
        open_video(url, policy=FAST)
    assert time.monotonic() - start < 5
    assert "3 attempts" in info.value.message and "pw" not in info.value.message
    assert exit_code_for(info.value) == 3


def test_missing_capture_device() -> None:
    start = time.monotonic()
    with pytest.raises(StreamUnavailableError, match="device 63"):
        open_video("63", policy=FAST)
    assert time.monotonic() - start < 5


def test_silent_server_times_out_instead_of_hanging() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    policy = ReconnectPolicy(
        max_attempts=2, initial_backoff_s=0.05, open_timeout_s=0.5, read_timeout_s=0.5
    )
    start = time.monotonic()
    try:
        with pytest.raises(StreamUnavailableError):
            open_video(f"http://127.0.0.1:{server.getsockname()[1]}/never.mjpg", policy=policy)
    finally:
        server.close()
        for c in accepted:
            c.close()
    assert time.monotonic() - start < 6


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _CutOnce(_Quiet):
    """Serves files, but the first response of each file is cut in the middle."""

    cut: ClassVar[set[str]] = set()

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        if self.path in self.cut:
            return super().copyfile(source, outputfile)
        self.cut.add(self.path)
        data = source.read()
        outputfile.write(data[: len(data) // 2])


@pytest.fixture()
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    _CutOnce.cut = set()
    handler = functools.partial(_CutOnce, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def test_http_stream_reconnects_drops_stale_frames_and_ends(
    http_root: tuple[str, Path],
) -> None:
    base, folder = http_root
    synth.write_video(folder / "cam.avi", grey_frames(40), fps=40, fourcc="MJPG")
    start = time.monotonic()
    with open_video(f"{base}/cam.avi", policy=FAST) as video:
        assert isinstance(video, LiveVideo) and video.info.live
        seen = []
        for frame in video.frames():
            seen.append(frame)
            time.sleep(0.06)  # a slow consumer: ~16 fps against a 40 fps source
        assert video.reconnects == 1  # the first response was cut mid-file
        assert video.dropped > 0
    assert time.monotonic() - start < 10
    indices = [f.index for f in seen]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert max(np.diff(indices)) > 1  # stale frames were skipped, never queued
    assert abs(seen[0].timestamp - time.time()) < 30  # wall clock for live sources


def test_lost_stream_raises_after_bounded_reconnects(http_root: tuple[str, Path]) -> None:
    base, folder = http_root
    synth.write_video(folder / "cam.avi", grey_frames(20), fps=40, fourcc="MJPG")
    video = open_video(f"{base}/cam.avi", policy=FAST)
    (folder / "cam.avi").unlink()  # the cut first response ends early; reopening fails
    start = time.monotonic()
    with pytest.raises(StreamUnavailableError, match="3 attempts"):
        for _ in video.frames():
            pass
    video.close()
    assert time.monotonic() - start < 10


def test_realtime_file_is_paced_with_low_latency(tmp_path: Path) -> None:
    path = synth.write_video(tmp_path / "c.mp4", grey_frames(25), fps=25)
    start = time.monotonic()
    latencies = []
    with open_video(path, realtime=True) as video:
        assert video.info.live
        for frame in video.frames():
            latencies.append(time.monotonic() - frame.captured_at)
            time.sleep(0.005)
    elapsed = time.monotonic() - start
    assert 0.8 < elapsed < 3.0  # one second of video takes about one second
    assert float(np.median(latencies)) < 0.05
