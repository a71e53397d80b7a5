"""Settings of the REST service, built at the edge (``faceindex serve``, tests) and passed in.

Deliberately free of FastAPI imports, so the CLI can build them without loading the web
stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceindex.config import Settings
from faceindex.errors import ConfigError

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ApiSettings:
    #: Address to listen on; the loopback default keeps the service local.
    host: str = "127.0.0.1"
    port: int = 8000
    #: Gallery file (``None``: ``$FACEINDEX_GALLERY``, else the user data folder).
    gallery: Path | None = None
    #: Turn API keys off (local use only: the server warns loudly at start-up).
    no_auth: bool = False
    #: Largest accepted image upload, in bytes (413 ``image_too_large`` beyond).
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: Largest accepted image, in pixels, checked from the header before decoding.
    max_image_pixels: int = 40_000_000
    #: Most images in one request (enrolment of several photos).
    max_files: int = 20
    #: Largest request body, in bytes (413 ``request_too_large`` beyond): several photos,
    #: or base64 JSON (a third larger than the file).
    max_request_bytes: int = 100 * 1024 * 1024
    #: Requests per API key per minute (a token bucket holding a minute's worth); 0 = off.
    rate_limit_per_minute: int = 600
    #: Stream monitors (/v1/monitors) that may run at once; each takes CPU.
    max_monitors: int = 2
    #: Keep enrolled photos in the gallery (needed for thumbnails and re-embedding).
    keep_photos: bool = False
    #: Template encryption key file (``None``: ``$FACEINDEX_KEY`` if set, else no key).
    key_file: Path | None = None
    #: Requests doing model work at once (each also uses the runtime's threads).
    model_workers: int = 2
    #: Serve the web UI folder at ``/`` (``None``: the packaged ``faceindex/web/static``).
    static_dir: Path | None = None
    #: Serve Swagger UI at ``/docs``. Off by default: its page loads scripts from a public
    #: CDN, which an offline server cannot reach and which would see the API key typed into
    #: it. The OpenAPI document itself is always at ``/openapi.json``.
    docs: bool = False
    #: Recognition pipeline settings (detector, embedder, threshold, threads).
    pipeline: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        for name in (
            "max_upload_bytes",
            "max_image_pixels",
            "max_files",
            "max_request_bytes",
            "model_workers",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"ApiSettings.{name} must be at least 1", setting=name)
        if self.rate_limit_per_minute < 0:
            raise ConfigError("ApiSettings.rate_limit_per_minute must not be negative")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range", setting="port")
