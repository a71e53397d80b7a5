"""Vector indexes for 1:N face search: the :class:`VectorIndex` protocol and its registry.

Why a separate layer: the gallery store (SQLite) is the source of truth for templates; an
index is a *derived cache* over ``(template_id, vector)`` pairs that answers "which stored
vectors are most similar to this probe" quickly. It can always be rebuilt from the store,
and the store cascades deletes into it with :meth:`VectorIndex.remove`.

Conventions every backend follows (checked by one parametrised contract test):

- ids are non-negative ``int64`` (template ids); ``-1`` is reserved for padding;
- vectors are ``float32`` of the index's ``dim``; similarity is the raw inner product, so it
  is a cosine only when the caller L2-normalises, as every faceindex embedder does. The
  index accepts non-normalised vectors without complaint (it cannot know the caller's
  intent, and re-normalising would silently change similarities) but NaN/inf are refused;
- ``search`` returns ``(ids (m, k) int64, similarities (m, k) float32)``, best first, padded
  with id ``-1`` and similarity ``-inf`` when fewer than ``k`` entries are stored;
- re-adding an existing id replaces its vector; removing unknown ids is not an error;
- files are written crash-safely (temp file + ``os.replace``) in one versioned, checksummed
  container (:func:`~faceindex.index.base.write_index_file`); nothing is pickled. Loading
  refuses a file of the wrong backend or dimension, a truncated or corrupted file, with an
  ``InvalidInputError``.

- ids within one ``add`` call must be unique; a single ``(dim,)`` query is accepted as
  ``(1, dim)``. Searches may run concurrently; writes need the caller's lock.

Backends (:data:`INDEXES`): ``exact`` (numpy, the default) and ``hnsw`` (faiss HNSW, for
galleries too large for exact search within a latency budget; it reports its recall). On
the project's 2-core machine, single query, k=10: exact takes 0.13 ms at 10k templates,
1.1 ms at 100k and 18 ms at 1M; hnsw 3.4 ms at 1M with recall@10 ~0.91 by default (see
:mod:`faceindex.index.hnsw` for the trade-off). ``benchmarks/search.py`` re-measures.

Index files are a local cache, not an exchange format: the checksum catches corruption,
but the hnsw file's graph is parsed by faiss, so do not load files from untrusted sources.

This module is the public face only. What the backends share (input checks, the on-disk
container) is in :mod:`faceindex.index.base`, the recall measure in
:mod:`faceindex.index.recall`; backends import from those, never from this package.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, Self, runtime_checkable

import numpy.typing as npt

from faceindex.errors import ConfigError, InvalidInputError
from faceindex.index.base import PAD_ID, FloatArray, IdArray, PathLike, read_index_header
from faceindex.index.recall import RecallReport, recall_at_k
from faceindex.registry import Registry

__all__ = [
    "DEFAULT_INDEX",
    "INDEXES",
    "PAD_ID",
    "FloatArray",
    "IdArray",
    "IndexClass",
    "PathLike",
    "RecallReport",
    "VectorIndex",
    "build_index",
    "load_index",
    "recall_at_k",
]


@runtime_checkable
class VectorIndex(Protocol):
    """An in-memory index of ``(id, vector)`` pairs searched by inner product."""

    #: Registered backend name (``"exact"``, ``"hnsw"``), also written in saved files.
    backend: str

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add ``(n,)`` ids with ``(n, dim)`` vectors; an id already present is replaced."""
        ...

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove ids (unknown ones are ignored); return how many were removed."""
        ...

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[IdArray, FloatArray]:
        """Top-``k`` per query: ``(ids (m, k), similarities (m, k))``, best first, padded."""
        ...

    def ids(self) -> IdArray:
        """The stored ids (a copy, in no particular order)."""
        ...

    def save(self, path: PathLike) -> None:
        """Write the index to ``path`` atomically (temp file then ``os.replace``)."""
        ...

    @classmethod
    def load(cls, path: PathLike, *, dim: int | None = None) -> Self:
        """Read an index saved by this backend; ``dim`` if given must match the file's."""
        ...


class IndexClass(Protocol):
    """What the registry holds: a backend class (constructor plus ``load``)."""

    backend: str

    def __call__(self, dim: int, **options: Any) -> VectorIndex: ...

    def load(self, path: PathLike, *, dim: int | None = None) -> VectorIndex: ...


INDEXES: Registry[IndexClass] = Registry("vector index")
INDEXES.register("exact", "faceindex.index.exact:ExactIndex")
INDEXES.register("hnsw", "faceindex.index.hnsw:HnswIndex")
INDEXES.register("pq-rerank", "faceindex.index.pq:PqRerankIndex")

DEFAULT_INDEX = "exact"


def build_index(name: str, dim: int, **options: Any) -> VectorIndex:
    """A new, empty index of the registered backend ``name`` (``exact``, ``hnsw``)."""
    cls = INDEXES.get(name)
    try:
        return cls(dim, **options)
    except TypeError as exc:  # an option this backend does not have
        raise ConfigError(f"invalid options for the {name!r} vector index: {exc}") from exc


def load_index(
    path: PathLike, *, backend: str | None = None, dim: int | None = None
) -> VectorIndex:
    """Load any saved index, dispatching on the backend named in the file's header.

    ``backend`` and ``dim``, when given, must match the file (a gallery configured for
    128-d ``exact`` search must not silently pick up a 256-d ``hnsw`` cache).
    """
    header = read_index_header(path)
    found = str(header["backend"])
    if backend is not None and found != backend:
        raise InvalidInputError(
            f"{os.fspath(path)!r} holds a {found!r} index, expected {backend!r}",
            path=os.fspath(path),
            backend=found,
            expected=backend,
        )
    return INDEXES.get(found).load(path, dim=dim)
