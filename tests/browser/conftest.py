"""Fixtures of the browser tests: one server for the whole session, the screenshot folder,
and a fresh Chromium profile per test; a failed test keeps a screenshot of its page."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from browser_harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HERE,
    ROOT,
    SHOTS_COPY,
    STEP_TIMEOUT_MS,
    Browser,
    copy_shots,
    free_port,
    wait_until_up,
)
from playwright import sync_api as playwright_api


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.user_properties.append(("browser_test_failed", report.failed))
    return report


@pytest.fixture(scope="session")
def library_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the server may scan (its FACEINDEX_LIBRARY_ROOTS); tests put photos in it."""
    return tmp_path_factory.mktemp("library")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, library_root: Path) -> Iterator[str]:
    """Base URL (ending in /) of a freshly started server with an empty gallery."""
    work = tmp_path_factory.mktemp("server")
    port = free_port()
    if os.environ.get("FACEINDEX_UI_SERVER") == "stub":
        cmd = [sys.executable, str(HERE / "stub_server.py"), "--port", str(port)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "faceindex.cli.main",
            "serve",
            "--no-auth",
            "--port",
            str(port),
            "--gallery",
            str(work / "gallery.db"),
            "--keep-photos",  # so that the person page shows thumbnails
        ]
    log = work / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACEINDEX_LIBRARY_ROOTS": str(library_root)}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Folder for the screenshots; copied to /tmp/faceindex-screenshots/ after each test."""
    env = os.environ.get("FACEINDEX_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        SHOTS_COPY.mkdir(parents=True, exist_ok=True)
        for old in SHOTS_COPY.glob("*.png"):
            old.unlink()
    yield folder


@pytest.fixture(scope="session")
def chromium() -> Iterator[playwright_api.Browser]:
    """One Chromium for the session (starting it is the slow part); each test gets a fresh,
    isolated context in it (no cookies, storage or cache carried over)."""
    with playwright_api.sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def browser(
    server: str,
    shots: Path,
    chromium: playwright_api.Browser,
    request: pytest.FixtureRequest,
) -> Iterator[Browser]:
    context = chromium.new_context(
        viewport={"width": 1200, "height": 860}, permissions=["camera"], accept_downloads=True
    )
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield Browser(page, server, shots)
        if ("browser_test_failed", True) in request.node.user_properties:
            failed = shots / f"FAILED-{request.node.name}.png"
            page.screenshot(path=str(failed), full_page=True)
    finally:
        context.close()
        copy_shots(shots)
