"""Where faceindex keeps files it derives from packaged weights (e.g. ONNX graphs built once).

Everything here can be rebuilt from the installed model packages, so it belongs in the
user's cache folder, never next to the package (which may be read-only) nor in the
working directory. ``FACEINDEX_CACHE_DIR`` overrides the location, for containers and tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_DIR_ENV = "FACEINDEX_CACHE_DIR"


def default_cache_dir() -> Path:
    """Return ``$FACEINDEX_CACHE_DIR`` if set and non-empty, else the platform's user cache."""
    override = os.environ.get(CACHE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    # appauthor=False: no "faceindex/faceindex" nesting on Windows.
    return Path(platformdirs.user_cache_dir("faceindex", appauthor=False))
