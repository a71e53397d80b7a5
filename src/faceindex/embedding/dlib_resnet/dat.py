"""Read dlib's DNN ``.dat`` serialisation with numpy alone, so dlib's networks can be ported.

dlib-bin runs its ResNet face descriptor single-threaded and holds the GIL; reading the
weights ourselves lets :mod:`faceindex.embedding.dlib_resnet.onnx_graph` rebuild the network
as an ONNX graph. Only the layer types the dlib face models use are understood; anything else is
refused with :class:`~faceindex.errors.ModelUnavailableError` rather than guessed at.

Format facts, measured on ``dlib_face_recognition_resnet_model_v1.dat`` (sha256 55533b28...)
and checked against dlib's ``core.h``/``layers.h``/``input.h``:

* Integers use dlib's variable-length encoding: a control byte whose low nibble is the
  number of value bytes that follow (little-endian) and whose bit 7 is the sign. Zero is
  written with one value byte (``01 00``), never as a bare control byte.
* Strings are an integer length followed by that many bytes (layer names such as
  ``"con_4"``, ``"affine_"``, ``"relu_"``, ``"max_pool_2"``, ``"avg_pool_2"``,
  ``"add_prev_"``, ``"fc_2"``, ``"input_rgb_image_sized"``, ``"loss_metric_2"``).
* ``bool`` is one ASCII byte, ``'0'`` or ``'1'`` (not an integer).
* Scalars such as the input means and the learning-rate multipliers are not IEEE floats:
  they are two integers, mantissa then base-2 exponent (value = m * 2**e); exponents
  32000/32001/32002 stand for +inf/-inf/nan. The means decode exactly to float32 values.
* A tensor is an integer version (2), four integer dims (num_samples, k, nr, nc), then the
  raw little-endian float32 data. A layer keeps *all* its parameters in one such tensor
  (shape ``(size, 1, 1, 1)``); "alias tensors" (version 1 + four dims, no data) describe
  how to cut it: a conv's filters (N, C, kh, kw) then its N biases; an affine layer's gamma
  then beta; an fc layer's weights as (num_inputs, num_outputs), row-major.
* The network is serialised outside-in: the loss layer's own fields, then one version
  integer per wrapping layer down to the innermost (``add_layer`` = 2, the one wrapping the
  input layer = 3, tag and skip layers = 1), then the input layer and every layer's fields
  from the input outwards. Each ``add_layer`` follows its layer's fields with three bools
  and three (normally empty) state tensors; the innermost adds its sample expansion factor.
* Tag and skip layers write only their version: **their ids (tag1, skip1, ...) are not in
  the file**. The reader reports them as :class:`TagOrSkip` markers in their positions;
  what they mean comes from the network's definition (dlib's ``dnn_face_recognition_ex``),
  which :mod:`faceindex.embedding.dlib_resnet.onnx_graph` checks the layer sequence against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceindex.errors import ModelUnavailableError

FloatArray = npt.NDArray[np.float32]

_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


@dataclass(frozen=True, slots=True)
class InputRgb:
    """``input_rgb_image_sized``: each channel becomes ``(v - mean) / 256``, planar RGB."""

    means_rgb: FloatArray  # (3,) red, green, blue
    rows: int
    cols: int


@dataclass(frozen=True, slots=True)
class Conv:
    """``con_``: cross-correlation with ``filters`` (N, C, kh, kw) plus ``bias`` (N,)."""

    filters: FloatArray
    bias: FloatArray
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x), applied on both sides


@dataclass(frozen=True, slots=True)
class Affine:
    """``affine_``: per-channel ``gamma * x + beta`` (batch norm frozen at training's end)."""

    gamma: FloatArray
    beta: FloatArray
    per_channel: bool  # dlib's CONV_MODE; False would mean one gamma per element (FC_MODE)


@dataclass(frozen=True, slots=True)
class Relu:
    """``relu_``."""


@dataclass(frozen=True, slots=True)
class Pool:
    """``max_pool_``/``avg_pool_``; a window of 0 means the whole input (global pooling)."""

    is_max: bool
    window: tuple[int, int]  # (rows, cols)
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True)
class AddPrev:
    """``add_prev_``: adds a tagged earlier output; which tag is not recorded in the file."""


@dataclass(frozen=True, slots=True)
class TagOrSkip:
    """A tag or skip layer: the file records its position but neither its kind nor its id."""


@dataclass(frozen=True, slots=True)
class FullyConnected:
    """``fc_``: ``x @ weights (+ bias)``, ``weights`` shaped (num_inputs, num_outputs)."""

    weights: FloatArray
    bias: FloatArray | None


@dataclass(frozen=True, slots=True)
class MetricLoss:
    """``loss_metric_``: training-only; its distance threshold is dlib's 0.6 convention."""

    margin: float
    distance_threshold: float


Layer = Conv | Affine | Relu | Pool | AddPrev | TagOrSkip | FullyConnected


@dataclass(frozen=True, slots=True)
class DlibNet:
    """A whole network: input layer, then ``layers`` in forward order, then the loss."""

    input: InputRgb
    layers: tuple[Layer, ...]
    loss: MetricLoss

    def convs(self) -> tuple[Conv, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, Conv))


class DatFormatError(ModelUnavailableError):
    """The file is not a dlib network of a kind this reader understands."""


class _Cursor:
    """Sequential decoding of dlib's primitive encodings over an in-memory buffer."""

    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        self._name = name
        self.pos = 0

    def fail(self, what: str) -> DatFormatError:
        return DatFormatError(f"{self._name}: {what} at byte {self.pos}", offset=self.pos)

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self._data):
            raise self.fail(f"file ends while reading {n} bytes")
        chunk = self._data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        # dlib never writes a bare zero-length integer, and no C++ integer exceeds 8 bytes;
        # anything else means we lost sync with the stream.
        if not 1 <= size <= 8 or control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def small(self, what: str, *, low: int = 0, high: int = 1 << 31) -> int:
        value = self.integer()
        if not low <= value <= high:
            raise self.fail(f"{what} {value} outside [{low}, {high}]")
        return value

    def boolean(self) -> bool:
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {byte!r}")
        return byte == b"1"

    def string(self) -> str:
        length = self.small("string length", high=4096)
        raw = self._take(length)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-ASCII string") from None

    def peek_string(self) -> str | None:
        start = self.pos
        try:
            return self.string()
        except DatFormatError:
            return None
        finally:
            self.pos = start

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return math.ldexp(float(mantissa), exponent)

    def tensor(self) -> FloatArray:
        version = self.integer()
        if version != 2:
            raise self.fail(f"unsupported tensor version {version}")
        shape = tuple(self.small("tensor dim", high=1 << 28) for _ in range(4))
        count = math.prod(shape)
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, int, int, int]:
        version = self.integer()
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version}")
        n, k, nr, nc = (self.small("alias dim", high=1 << 28) for _ in range(4))
        return n, k, nr, nc

    def expect_end(self) -> None:
        if self.pos != len(self._data):
            raise self.fail(f"{len(self._data) - self.pos} unread bytes at the end")


def _cut(params: FloatArray, offset: int, shape: tuple[int, ...], what: str) -> FloatArray:
    flat = params.reshape(-1)
    size = math.prod(shape)
    if offset + size > flat.size:
        raise DatFormatError(f"{what} needs {offset + size} parameters, tensor has {flat.size}")
    return flat[offset : offset + size].reshape(shape).copy()


def _read_input(cur: _Cursor, name: str) -> InputRgb:
    if name != "input_rgb_image_sized":
        raise cur.fail(f"unsupported input layer {name!r}")
    means = np.array([cur.real() for _ in range(3)], dtype=np.float32)
    rows = cur.small("input rows", low=1, high=1 << 16)
    cols = cur.small("input cols", low=1, high=1 << 16)
    return InputRgb(means_rgb=means, rows=rows, cols=cols)


def _read_conv(cur: _Cursor, name: str) -> Conv:
    params = cur.tensor()
    num_filters = cur.small("num_filters", low=1)
    kernel = (cur.small("kernel rows", low=1), cur.small("kernel cols", low=1))
    stride = (cur.small("stride y", low=1), cur.small("stride x", low=1))
    padding = (cur.small("padding y"), cur.small("padding x"))
    filters_shape = cur.alias_shape()
    bias_shape = cur.alias_shape()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        cur.real()
    if name == "con_5":
        cur.boolean()  # use_bias; an unused bias shows up as an empty alias below
    if filters_shape[0] != num_filters or filters_shape[2:] != kernel:
        raise cur.fail(f"conv filters {filters_shape} disagree with {num_filters}x{kernel}")
    filters = _cut(params, 0, filters_shape, "conv filters")
    if math.prod(bias_shape) == 0:
        bias = np.zeros(num_filters, dtype=np.float32)
    else:
        bias = _cut(params, filters.size, (num_filters,), "conv bias")
    return Conv(filters=filters, bias=bias, stride=stride, padding=padding)


def _read_affine(cur: _Cursor) -> Affine:
    params = cur.tensor()
    gamma_shape = cur.alias_shape()
    cur.alias_shape()  # beta's shape equals gamma's
    mode = cur.small("affine mode", high=1)
    size = math.prod(gamma_shape)
    gamma = _cut(params, 0, (size,), "affine gamma")
    beta = _cut(params, size, (size,), "affine beta")
    return Affine(gamma=gamma, beta=beta, per_channel=mode == 0)


def _read_pool(cur: _Cursor, *, is_max: bool) -> Pool:
    window = (cur.small("pool rows"), cur.small("pool cols"))
    stride = (cur.small("pool stride y", low=1), cur.small("pool stride x", low=1))
    padding = (cur.small("pool padding y"), cur.small("pool padding x"))
    return Pool(is_max=is_max, window=window, stride=stride, padding=padding)


def _read_fc(cur: _Cursor) -> FullyConnected:
    num_outputs = cur.small("fc outputs", low=1)
    num_inputs = cur.small("fc inputs", low=1)
    params = cur.tensor()
    cur.alias_shape()  # weights: (num_inputs, num_outputs)
    bias_shape = cur.alias_shape()
    bias_mode = cur.small("fc bias mode", high=1)  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
    for _ in range(4):
        cur.real()
    weights = _cut(params, 0, (num_inputs, num_outputs), "fc weights")
    bias = None
    if bias_mode == 0 and math.prod(bias_shape) > 0:
        bias = _cut(params, weights.size, (num_outputs,), "fc bias")
    return FullyConnected(weights=weights, bias=bias)


def _read_layer(cur: _Cursor) -> Layer:
    name = cur.string()
    if name in ("con_4", "con_5"):
        return _read_conv(cur, name)
    if name == "affine_":
        return _read_affine(cur)
    if name == "relu_":
        return Relu()
    if name == "max_pool_2":
        return _read_pool(cur, is_max=True)
    if name == "avg_pool_2":
        return _read_pool(cur, is_max=False)
    if name == "add_prev_":
        return AddPrev()
    if name == "fc_2":
        return _read_fc(cur)
    raise cur.fail(f"unsupported layer {name!r}")


def _skip_layer_state(cur: _Cursor) -> None:
    # setup_called, gradient_stale, output_disabled; then x_grad, cached_output, params_grad
    for _ in range(3):
        cur.boolean()
    for _ in range(3):
        cur.tensor()


def parse_dat(data: bytes, *, name: str = "<bytes>") -> DlibNet:
    """Decode a serialised ``loss_metric`` network (dlib's face descriptor) from bytes."""
    cur = _Cursor(data, name)
    if cur.integer() != 1:
        raise cur.fail("not a dlib add_loss_layer (version 1)")
    loss_name = cur.string()
    if loss_name != "loss_metric_2":
        raise cur.fail(f"unsupported loss layer {loss_name!r}")
    loss = MetricLoss(margin=cur.real(), distance_threshold=cur.real())

    # Outside-in: one version per wrapper; True = add_layer with fields, False = tag/skip.
    wrappers: list[bool] = []
    while True:
        version = cur.small("layer version", high=3)
        next_name = cur.peek_string()
        if next_name is not None and next_name.startswith("input"):
            if version not in (2, 3):
                raise cur.fail(f"unsupported innermost add_layer version {version}")
            break
        if version not in (1, 2):
            raise cur.fail(f"unexpected layer version {version}")
        wrappers.append(version == 2)

    net_input = _read_input(cur, cur.string())
    layers: list[Layer] = [_read_layer(cur)]
    _skip_layer_state(cur)
    if version == 3:
        cur.small("sample expansion factor", low=1)
    for has_fields in reversed(wrappers):
        if has_fields:
            layers.append(_read_layer(cur))
            _skip_layer_state(cur)
        else:
            layers.append(TagOrSkip())
    cur.expect_end()
    return DlibNet(input=net_input, layers=tuple(layers), loss=loss)


def read_dat(path: Path) -> DlibNet:
    """Read a dlib ``.dat`` network file (see :func:`parse_dat`)."""
    return parse_dat(path.read_bytes(), name=str(path))
