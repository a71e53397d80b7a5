"""Settings of the REST service, built at the edge (``faceindex serve``, tests) and passed in.

Deliberately free of FastAPI imports, so the CLI can build them without loading the web
stack.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from faceindex.config import DEFAULT_MAX_IMAGE_PIXELS, Settings
from faceindex.errors import ConfigError

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024

#: Host names always served (besides the bind address): the loopback names, and
#: ``testserver``, the name Starlette's ``TestClient`` sends (not a real DNS name).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "testserver")

#: Bind addresses that listen on every interface: the Host a client uses cannot be known.
_WILDCARD_BINDS = ("", "0.0.0.0", "::")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or host name) is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_key(host: str) -> str:
    """A host name as compared with the Host header: lower case, IPv6 without brackets."""
    return host.strip().lower().strip("[]").rstrip(".")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    #: Address to listen on; the loopback default keeps the service local.
    host: str = "127.0.0.1"
    port: int = 8000
    #: Gallery file (``None``: ``$FACEINDEX_GALLERY``, else the user data folder).
    gallery: Path | None = None
    #: Turn API keys off (local use only: the server warns loudly at start-up). Refused on
    #: a non-loopback ``host`` unless ``allow_remote_no_auth`` is set too.
    no_auth: bool = False
    #: Allow ``no_auth`` on a non-loopback address: everyone who can reach it gets full
    #: access to the gallery.
    allow_remote_no_auth: bool = False
    #: Host names (the ``Host`` header, port ignored) the server answers; any other is a 400,
    #: which stops DNS-rebinding pages. ``None``: the bind address and the loopback names,
    #: or any host when bound to every interface (``0.0.0.0``, ``::``). ``"*"`` allows all.
    allowed_hosts: tuple[str, ...] | None = None
    #: Seconds a client has to send a whole request body once the app starts reading it
    #: (408 ``request_timeout`` beyond): slow-body connections are not held open.
    body_timeout_s: float = 30.0
    #: Seconds an idle keep-alive connection is kept open (uvicorn ``timeout_keep_alive``).
    keep_alive_timeout_s: int = 5
    #: Most connections and requests handled at once; more are answered 503 (uvicorn
    #: ``limit_concurrency``).
    max_connections: int = 200
    #: Largest accepted image upload, in bytes (413 ``image_too_large`` beyond).
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: Largest accepted image, in pixels, checked from the header before decoding.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
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
            "max_connections",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"ApiSettings.{name} must be at least 1", setting=name)
        if self.rate_limit_per_minute < 0:
            raise ConfigError("ApiSettings.rate_limit_per_minute must not be negative")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range", setting="port")
        for name in ("body_timeout_s", "keep_alive_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"ApiSettings.{name} must be positive", setting=name)
        if self.no_auth and not self.allow_remote_no_auth and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve without authentication on {self.host!r}, which is not a "
                "loopback address: every machine that can reach it would have full access to "
                "the gallery. Bind to 127.0.0.1, use API keys, or force it with "
                "--allow-remote-no-auth",
                setting="no_auth",
            )
        if self.allowed_hosts is not None and not all(h.strip() for h in self.allowed_hosts):
            raise ConfigError(
                "ApiSettings.allowed_hosts has an empty name", setting="allowed_hosts"
            )

    def host_allowed(self, host: str) -> bool:
        """Whether a request's Host name (without its port) may be served."""
        if self.allowed_hosts is None:
            if _host_key(self.host) in _WILDCARD_BINDS:
                return True
            allowed: tuple[str, ...] = (self.host, *LOOPBACK_HOSTS)
        else:
            allowed = self.allowed_hosts
        if "*" in allowed:
            return True
        return _host_key(host) in {_host_key(h) for h in allowed}
