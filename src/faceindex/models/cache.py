"""Where faceindex keeps files it derives from packaged weights (e.g. ONNX graphs built once).

Everything here can be rebuilt from the installed model packages, so it belongs in the
user's cache folder, never next to the package (which may be read-only) nor in the
working directory. The library reads no environment variable: callers that want another
folder (containers, tests) pass ``cache_dir=`` to the embedder; the entry points (CLI, API)
build it from their settings.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs


def default_cache_dir() -> Path:
    """Return the platform's user cache folder for faceindex (it may not exist yet)."""
    # appauthor=False: no "faceindex/faceindex" nesting on Windows.
    return Path(platformdirs.user_cache_dir("faceindex", appauthor=False))
