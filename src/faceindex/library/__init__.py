"""The photo library: "who is in my photos?".

Scan photo folders (:mod:`~faceindex.library.scan`), recognise the enrolled people on the
way, group the faces of everyone else into candidate people (:mod:`~faceindex.library.cluster`),
and name each group once (:class:`~faceindex.library.library.PhotoLibrary`). Its tables
live in the gallery's database, SQLite or PostgreSQL (:mod:`~faceindex.library.store`).
Names resolve lazily, so importing this package loads neither the store nor a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceindex.library.cluster import ClusterRule, Method
    from faceindex.library.library import Cluster, Clusters, PhotoLibrary
    from faceindex.library.scan import ScanReport

__all__ = ["Cluster", "ClusterRule", "Clusters", "Method", "PhotoLibrary", "ScanReport"]

_LAZY = {
    "Cluster": "faceindex.library.library",
    "Clusters": "faceindex.library.library",
    "PhotoLibrary": "faceindex.library.library",
    "ClusterRule": "faceindex.library.cluster",
    "Method": "faceindex.library.cluster",
    "ScanReport": "faceindex.library.scan",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'faceindex.library' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
