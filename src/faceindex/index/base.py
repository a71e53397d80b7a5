"""What the vector index backends share: input checks, result padding, the file container.

The toolbox of :mod:`faceindex.index.exact`, :mod:`~faceindex.index.hnsw` and
:mod:`~faceindex.index.pq`; the public face (protocol, registry, ``build_index``,
``load_index``) is :mod:`faceindex.index`. Backends import from here, never from the
package ``__init__``, so that the package can import them lazily without a cycle.
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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceindex.errors import InvalidInputError, NotFoundError, StorageError

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


# --- input validation ------------------------------------------


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
            os.fchmod(f.fileno(), 0o600)  # index files hold biometric vectors: owner only
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
