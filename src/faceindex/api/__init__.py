"""The REST API: ``create_app(settings)`` gives a FastAPI app serving ``/v1`` and the web UI.

FastAPI is imported only when the app is built (``faceindex.api.create_app`` is resolved
lazily), so ``faceindex.api.settings`` stays usable without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceindex.api.app import create_app
    from faceindex.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from faceindex.api.app import create_app

        return create_app
    if name == "ApiSettings":
        from faceindex.api.settings import ApiSettings

        return ApiSettings
    raise AttributeError(f"module 'faceindex.api' has no attribute {name!r}")
