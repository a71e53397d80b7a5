"""Helpers shared by the REST API tests (imported by name: the test folder is on sys.path)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Starlette suggests httpx2 for its test client; httpx is what the project pins for now.
warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.apikeys import KeyRing  # noqa: E402
from faceindex.gallery import open_gallery  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"

MakeClient = Callable[..., TestClient]


def photo(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def upload(name: str, data: bytes | None = None, field: str = "image") -> tuple[str, Any]:
    return (field, (name, photo(name) if data is None else data, "application/octet-stream"))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def create_key(gallery: Path, name: str, scopes: str) -> str:
    """A key made straight in the gallery file, as ``faceindex keys create`` does."""
    with open_gallery(gallery) as store:
        _, secret = KeyRing(store.path).create(name, scopes)
    return secret
