"""Fixtures of the REST API tests: an app on a fresh gallery, with the session's models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import MakeClient, TestClient

from faceindex.api.app import create_app
from faceindex.api.settings import ApiSettings
from faceindex.pipeline import Pipeline


@pytest.fixture()
def gallery_path(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture()
def make_client(gallery_path: Path, pipeline: Pipeline) -> Iterator[MakeClient]:
    """``make_client(**ApiSettings fields)``: a started app (lifespan run) on the gallery."""
    clients: list[TestClient] = []

    def make(*, raise_server_exceptions: bool = True, **options: Any) -> TestClient:
        options.setdefault("gallery", gallery_path)
        options.setdefault("rate_limit_per_minute", 0)
        app = create_app(ApiSettings(**options), pipeline=pipeline)
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client: MakeClient) -> TestClient:
    """No-auth client with photos kept."""
    return make_client(no_auth=True, keep_photos=True)
