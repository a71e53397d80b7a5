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
  container (:func:`write_index_file`); nothing is pickled. Loading refuses a file of the
  wrong backend or dimension, a truncated or corrupted file, with an ``InvalidInputError``.

- ids within one ``add`` call must be unique; a single ``(dim,)`` query is accepted as
  ``(1, dim)``. Searches may run concurrently; writes need the caller's lock.

Backends (:data:`INDEXES`): ``exact`` (numpy, the default) and ``hnsw`` (faiss HNSW, for
galleries too large for exact search within a latency budget; it reports its recall). On
the project's 2-core machine, single query, k=10: exact takes 0.13 ms at 10k templates,
1.1 ms at 100k and 18 ms at 1M; hnsw 3.4 ms at 1M with recall@10 ~0.91 by default (see
:mod:`faceindex.index.hnsw` for the trade-off). ``benchmarks/search.py`` re-measures.

Index files are a local cache, not an exchange format: the checksum catches corruption,
but the hnsw file's graph is parsed by faiss, so do not load files from untrusted sources.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceindex.errors import ConfigError, InvalidInputError, NotFoundError, StorageError
from faceindex.registry import Registry

logger = logging.getLogger(__name__)

IdArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
PathLike = str | os.PathLike[str]

#: Padding id for result slots with no entry.
PAD_ID = -1

FILE_MAGIC = b"FXVINDEX"
FILE_FORMAT_VERSION = 1
#: Dtypes a section may have; anything else in a header means the file is not ours.
_SECTION_DTYPES = frozenset({"<i8", "<f4", "|u1"})
_U32 = struct.Struct("<I")
_MAX_HEADER_BYTES = 1 << 20


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


@dataclass(frozen=True, slots=True)
class RecallReport:
    """How well an approximate index agrees with exact search on a sample of queries.

    ``recall`` is the mean over queries of ``|ann_top_k & exact_top_k| / |exact_top_k|``;
    ``rank1_agreement`` the fraction of queries whose best hit is the same (what an
    identification decision depends on most).
    """

    k: int
    n_queries: int
    recall: float
    rank1_agreement: float


def recall_at_k(approx: IdArray, exact: IdArray) -> RecallReport:
    """Compare two ``(m, k)`` id arrays (padding ``-1`` ignored) as a :class:`RecallReport`."""
    a = np.asarray(approx, dtype=np.int64)
    e = np.asarray(exact, dtype=np.int64)
    if a.shape != e.shape or a.ndim != 2:
        raise InvalidInputError(f"recall needs two (m, k) id arrays, got {a.shape} {e.shape}")
    m, k = e.shape
    hits = 0.0
    for row_a, row_e in zip(a, e, strict=True):
        truth = set(row_e[row_e != PAD_ID].tolist())
        if truth:
            hits += len(truth.intersection(row_a.tolist())) / len(truth)
        else:
            hits += 1.0
    rank1 = float(np.mean(a[:, 0] == e[:, 0])) if m else 1.0
    return RecallReport(k=k, n_queries=m, recall=hits / m if m else 1.0, rank1_agreement=rank1)


# --- input validation shared by the backends ------------------------------------------


def check_dim(dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
        raise InvalidInputError(f"index dim must be a positive integer, got {dim!r}", dim=dim)
    return int(dim)


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}", k=k)
    return int(k)


def as_ids(ids: npt.ArrayLike, *, unique: bool = True) -> IdArray:
    """Ids as a 1-D ``int64`` array; refuses floats, negatives and (if asked) repeats."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InvalidInputError(f"ids must have shape (n,), got {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"ids must be integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64, copy=False)
    if int(out.min()) < 0:
        raise InvalidInputError("ids must be non-negative (-1 is the padding id)")
    if unique and np.unique(out).size != out.size:
        raise InvalidInputError("ids within one call must be unique")
    return out


def as_vectors(vectors: npt.ArrayLike, dim: int, *, what: str = "vectors") -> FloatArray:
    """``(n, dim)`` C-contiguous float32; a single ``(dim,)`` vector becomes ``(1, dim)``."""
    arr = np.asarray(vectors)
    if arr.dtype.kind not in "fiu":
        raise InvalidInputError(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InvalidInputError(
            f"{what} must have shape (n, {dim}), got {np.shape(vectors)}",
            expected_dim=dim,
            shape=list(np.shape(vectors)),
        )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise InvalidInputError(f"{what} contain NaN or infinity")
    return out


def count_mismatch(n_ids: int, n_vectors: int) -> InvalidInputError:
    return InvalidInputError(
        f"got {n_ids} ids for {n_vectors} vectors", n_ids=n_ids, n_vectors=n_vectors
    )


def bad_sections(path: PathLike) -> InvalidInputError:
    where = os.fspath(path)
    return InvalidInputError(f"{where!r} has missing or inconsistent sections", path=where)


def empty_results(m: int, k: int) -> tuple[IdArray, FloatArray]:
    return (
        np.full((m, k), PAD_ID, dtype=np.int64),
        np.full((m, k), -np.inf, dtype=np.float32),
    )


# --- the on-disk container ----------------------------------------------------------------
#
# magic (8) | u32 header length | header (UTF-8 JSON) | u32 crc32(header)
#   | section bytes, in header order | u32 crc32(all section bytes)
#
# The header names the backend, dim, count and each section's name/dtype/shape, so a reader
# can allocate every array once and read into it (no second copy of a 1M x 128 matrix).
# Arrays are little-endian raw bytes: nothing is pickled and nothing executes on load.


def write_index_file(
    path: PathLike,
    *,
    backend: str,
    dim: int,
    count: int,
    sections: Sequence[tuple[str, np.ndarray]],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``sections`` (name, array) under a versioned header, atomically."""
    target = Path(path)
    specs = []
    for name, array in sections:
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype.str not in _SECTION_DTYPES:
            raise ValueError(f"section {name!r} has unsupported dtype {array.dtype}")
        specs.append({"name": name, "dtype": dtype.str, "shape": list(array.shape)})
    header = {
        "format": FILE_FORMAT_VERSION,
        "backend": backend,
        "dim": int(dim),
        "count": int(count),
        "metric": "inner_product",
        "sections": specs,
        "extra": dict(extra or {}),
    }
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    target_dir = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target_dir, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(f"cannot write index file {str(target)!r}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(FILE_MAGIC)
            f.write(_U32.pack(len(header_bytes)))
            f.write(header_bytes)
            f.write(_U32.pack(zlib.crc32(header_bytes)))
            crc = 0
            for _, array in sections:
                data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
                view = data.reshape(-1).view(np.uint8).data
                crc = zlib.crc32(view, crc)
                f.write(view)
            f.write(_U32.pack(crc))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write index file {str(target)!r}: {exc}") from exc
        raise
    _fsync_dir(target_dir)
    logger.debug("saved %s index (%d x %d) to %s", backend, count, dim, target)


def read_index_header(path: PathLike) -> dict[str, Any]:
    """The validated header of a saved index (cheap: reads no section data)."""
    with _open_index(path) as f:
        return _read_header(f, os.fspath(path))


def read_index_file(
    path: PathLike, *, backend: str, dim: int | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a saved index of ``backend``: ``(header, {section name: array})``."""
    where = os.fspath(path)
    with _open_index(path) as f:
        header = _read_header(f, where)
        if header["backend"] != backend:
            raise InvalidInputError(
                f"{where!r} holds a {header['backend']!r} index, not {backend!r}",
                path=where,
                backend=header["backend"],
                expected=backend,
            )
        if dim is not None and header["dim"] != dim:
            raise InvalidInputError(
                f"{where!r} holds {header['dim']}-d vectors, expected {dim}-d",
                path=where,
                dim=header["dim"],
                expected_dim=dim,
            )
        arrays: dict[str, np.ndarray] = {}
        crc = 0
        for spec in header["sections"]:
            array = np.empty(tuple(spec["shape"]), dtype=np.dtype(spec["dtype"]))
            view = array.reshape(-1).view(np.uint8).data
            if f.readinto(view) != view.nbytes:
                raise InvalidInputError(f"{where!r} is truncated", path=where)
            crc = zlib.crc32(view, crc)
            arrays[spec["name"]] = array
        trailer = f.read(_U32.size)
        if len(trailer) != _U32.size:
            raise InvalidInputError(f"{where!r} is truncated", path=where)
        if _U32.unpack(trailer)[0] != crc or f.read(1):
            raise InvalidInputError(f"{where!r} is corrupted (checksum mismatch)", path=where)
    return header, arrays


def _open_index(path: PathLike) -> io.BufferedReader:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"no index file at {os.fspath(path)!r}", path=os.fspath(path)) from None
    except OSError as exc:
        raise StorageError(f"cannot read index file {os.fspath(path)!r}: {exc}") from exc


def _read_header(f: io.BufferedReader, where: str) -> dict[str, Any]:
    if f.read(len(FILE_MAGIC)) != FILE_MAGIC:
        raise InvalidInputError(f"{where!r} is not a faceindex vector index file", path=where)
    raw_len = f.read(_U32.size)
    if len(raw_len) != _U32.size:
        raise InvalidInputError(f"{where!r} is truncated", path=where)
    (length,) = _U32.unpack(raw_len)
    if length > _MAX_HEADER_BYTES:
        raise InvalidInputError(f"{where!r} has a corrupted header", path=where)
    header_bytes = f.read(length)
    raw_crc = f.read(_U32.size)
    if len(header_bytes) != length or len(raw_crc) != _U32.size:
        raise InvalidInputError(f"{where!r} is truncated", path=where)
    if _U32.unpack(raw_crc)[0] != zlib.crc32(header_bytes):
        raise InvalidInputError(f"{where!r} has a corrupted header", path=where)
    try:
        header = json.loads(header_bytes)
        version = header["format"]
        if version > FILE_FORMAT_VERSION:
            raise InvalidInputError(
                f"{where!r} uses index file format {version}; this faceindex reads up to "
                f"{FILE_FORMAT_VERSION}: upgrade faceindex or rebuild the index",
                path=where,
            )
        if not isinstance(header["backend"], str) or header["dim"] <= 0 or header["count"] < 0:
            raise ValueError("bad header fields")
        for spec in header["sections"]:
            if spec["dtype"] not in _SECTION_DTYPES or any(int(s) < 0 for s in spec["shape"]):
                raise ValueError("bad section")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{where!r} has an invalid header: {exc}", path=where) from exc
    result: dict[str, Any] = header
    return result


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
