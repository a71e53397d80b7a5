"""The ONNX port of dlib's face descriptor gives dlib's numbers, and its reader and cache work.

dlib-bin itself is the reference: every chip is run through both. Chips are cut from the
fixture photos the way face_recognition does it (HOG detector, 5-point landmarks,
``get_face_chip(size=150, padding=0.25)``), plus generated variants that push the network
off the face manifold (flips, shifts, zooms, noise, flat images).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from faceindex.embedding.dlib_resnet import DlibResnetEmbedder
from faceindex.embedding.dlib_resnet import onnx_graph as port
from faceindex.embedding.dlib_resnet.dat import (
    AddPrev,
    Affine,
    Conv,
    DatFormatError,
    DlibNet,
    FullyConnected,
    Pool,
    Relu,
    TagOrSkip,
    parse_dat,
    read_dat,
)
from faceindex.embedding.fusion import FusionEmbedder
from faceindex.errors import InvalidInputError
from faceindex.models.cache import default_cache_dir
from faceindex.models.catalog import DLIB_RESNET, DLIB_SHAPE5

pytestmark = pytest.mark.integration  # runs dlib and the dlib ResNet weights

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
TOLERANCE = 1e-4  # max abs difference per descriptor component
THRESHOLD = 0.6  # dlib's same-person Euclidean distance

Chips = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def net() -> DlibNet:
    return read_dat(DLIB_RESNET.verified_path())


@pytest.fixture(scope="module")
def face_chips() -> Chips:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(DLIB_SHAPE5.verified_path()))
    chips = []
    for path in sorted(FIXTURES.glob("*")):
        if path.suffix.lower() not in {".jpg", ".png"}:
            continue
        image = np.asarray(Image.open(path).convert("RGB"))
        for box in detector(image, 1):
            chips.append(dlib.get_face_chip(image, predictor(image, box), size=150, padding=0.25))
    return np.stack(chips)


@pytest.fixture(scope="module")
def all_chips(face_chips: Chips) -> Chips:
    rng = np.random.default_rng(1234)
    first, second = face_chips[0], face_chips[1]
    variants = [
        first[:, ::-1],  # mirrored
        second[:, ::-1],
        np.roll(first, (9, -6), axis=(0, 1)),  # shifted
        np.roll(second, (-5, 11), axis=(0, 1)),
        _zoom(first, 0.8),  # zoomed out, edges replicated
        _zoom(second, 1.3),  # zoomed in
        np.rot90(first),
        rng.integers(0, 256, (150, 150, 3), dtype=np.uint8),  # noise
        rng.integers(100, 140, (150, 150, 3), dtype=np.uint8),  # near the input means
        np.zeros((150, 150, 3), np.uint8),
        np.full((150, 150, 3), 255, np.uint8),
    ]
    return np.ascontiguousarray(np.concatenate([face_chips, np.stack(variants)]))


def _zoom(chip: Chips, factor: float) -> Chips:
    # Nearest-neighbour resampling about the centre; only needs to be a plausible crop.
    idx = np.clip(np.round((np.arange(150) - 74.5) / factor + 74.5), 0, 149).astype(np.intp)
    return np.ascontiguousarray(chip[idx][:, idx])


@pytest.fixture(scope="module")
def dlib_descriptors(all_chips: Chips) -> npt.NDArray[np.float64]:
    model = dlib.face_recognition_model_v1(str(DLIB_RESNET.verified_path()))
    return np.array([np.array(model.compute_face_descriptor(chip)) for chip in all_chips])


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> port.DlibResnetOnnx:
    return port.DlibResnetOnnx(cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def onnx_descriptors(embedder: port.DlibResnetOnnx, all_chips: Chips) -> npt.NDArray[np.float32]:
    return embedder.embed_chips(all_chips)


# ------------------------------------------------------------------ (a) the .dat reader


def test_reader_recovers_input_layer_and_loss(net: DlibNet) -> None:
    assert (net.input.rows, net.input.cols) == (150, 150)
    np.testing.assert_allclose(net.input.means_rgb, [122.782, 117.001, 104.298], atol=1e-4)
    assert net.loss.distance_threshold == pytest.approx(THRESHOLD)


def test_reader_recovers_the_resnet_layers(net: DlibNet) -> None:
    convs = net.convs()
    assert len(convs) == 29
    assert sum(isinstance(layer, Affine) for layer in net.layers) == 29
    assert sum(isinstance(layer, Relu) for layer in net.layers) == 29
    assert sum(isinstance(layer, AddPrev) for layer in net.layers) == 14
    assert sum(isinstance(layer, TagOrSkip) for layer in net.layers) == 14 + 4 * 2

    assert convs[0].filters.shape == (32, 3, 7, 7)
    assert (convs[0].stride, convs[0].padding) == ((2, 2), (0, 0))
    widths = [conv.filters.shape[0] for conv in convs[1:]]
    assert widths == [32] * 6 + [64] * 8 + [128] * 6 + [256] * 6 + [256] * 2
    for conv in convs[1:]:
        n, _, kh, kw = conv.filters.shape
        assert (kh, kw) == (3, 3)
        assert conv.bias.shape == (n,)
        # dlib's default padding: half the kernel at stride 1, none at stride 2.
        assert conv.padding == ((1, 1) if conv.stride == (1, 1) else (0, 0))
    assert sum(conv.stride == (2, 2) for conv in convs) == 5
    parameters = sum(conv.filters.size + conv.bias.size for conv in convs)
    assert parameters > 5_000_000

    pools = [layer for layer in net.layers if isinstance(layer, Pool)]
    assert [(p.is_max, p.window, p.stride) for p in pools] == [
        (True, (3, 3), (2, 2)),
        *[(False, (2, 2), (2, 2))] * 4,
        (False, (0, 0), (1, 1)),  # global average
    ]
    fc = net.layers[-1]
    assert isinstance(fc, FullyConnected)
    assert fc.weights.shape == (256, 128)
    assert fc.bias is None
    for layer in net.layers:
        if isinstance(layer, Affine | Conv):
            arrays = (layer.gamma, layer.beta) if isinstance(layer, Affine) else (layer.filters,)
            assert all(np.isfinite(a).all() for a in arrays)


def test_reader_rejects_damaged_files() -> None:
    data = DLIB_RESNET.verified_path().read_bytes()
    with pytest.raises(DatFormatError, match="file ends"):
        parse_dat(data[: len(data) // 2])
    with pytest.raises(DatFormatError, match="unread bytes"):
        parse_dat(data + b"\x00")
    with pytest.raises(DatFormatError):
        parse_dat(b"\x01\x05hello")


# ------------------------------------------------------------------ (b, c) equivalence


def test_fixture_photos_give_every_face(face_chips: Chips) -> None:
    # 8 photos, one with two people: if detection changes, the equivalence set shrinks.
    assert face_chips.shape == (9, 150, 150, 3)


def test_descriptors_match_dlib(
    onnx_descriptors: npt.NDArray[np.float32], dlib_descriptors: npt.NDArray[np.float64]
) -> None:
    assert onnx_descriptors.dtype == np.float32
    assert onnx_descriptors.shape == dlib_descriptors.shape == (20, 128)
    diff = np.abs(onnx_descriptors.astype(np.float64) - dlib_descriptors)
    assert diff.max() < TOLERANCE, f"max abs difference {diff.max():.3g} per chip {diff.max(1)}"
    # Not normalised, like dlib: norms are far from 1.
    assert not np.allclose(np.linalg.norm(onnx_descriptors, axis=1), 1.0, atol=1e-3)


def test_unfolded_graph_matches_dlib_too(
    all_chips: Chips, dlib_descriptors: npt.NDArray[np.float64]
) -> None:
    import onnxruntime as ort

    model = port.build_model(DLIB_RESNET.verified_path(), fold=False)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run([port.OUTPUT_NAME], {port.INPUT_NAME: all_chips})
    assert np.abs(out - dlib_descriptors).max() < TOLERANCE


def test_same_decisions_as_dlib_at_threshold(
    onnx_descriptors: npt.NDArray[np.float32], dlib_descriptors: npt.NDArray[np.float64]
) -> None:
    pairs = list(itertools.combinations(range(len(dlib_descriptors)), 2))
    ours = np.array([np.linalg.norm(onnx_descriptors[i] - onnx_descriptors[j]) for i, j in pairs])
    theirs = np.array([np.linalg.norm(dlib_descriptors[i] - dlib_descriptors[j]) for i, j in pairs])
    assert np.abs(ours - theirs).max() < TOLERANCE
    assert ((ours < THRESHOLD) == (theirs < THRESHOLD)).all()
    # The set must exercise both outcomes for the check to mean anything.
    assert (theirs < THRESHOLD).any()
    assert (theirs >= THRESHOLD).any()


# ------------------------------------------------------------------ (e) batching


def test_batch_equals_single_calls(embedder: port.DlibResnetOnnx, all_chips: Chips) -> None:
    batch = embedder.embed_chips(all_chips)
    singles = np.concatenate([embedder.embed_chips(chip[None]) for chip in all_chips])
    np.testing.assert_allclose(batch, singles, rtol=0, atol=1e-6)


def test_large_inputs_are_split_into_batches(tmp_path: Path, all_chips: Chips) -> None:
    small = port.DlibResnetOnnx(cache_dir=tmp_path, max_batch=3, intra_op_threads=1)
    whole = port.DlibResnetOnnx(cache_dir=tmp_path).embed_chips(all_chips)
    np.testing.assert_allclose(small.embed_chips(all_chips), whole, rtol=0, atol=1e-6)


def test_non_contiguous_input_is_accepted(embedder: port.DlibResnetOnnx, all_chips: Chips) -> None:
    strided = all_chips[::-2]
    np.testing.assert_allclose(
        embedder.embed_chips(strided),
        embedder.embed_chips(np.ascontiguousarray(strided)),
        rtol=0,
        atol=1e-6,
    )


# ------------------------------------------------------------------ input validation


def test_empty_batch_loads_nothing(tmp_path: Path) -> None:
    embedder = port.DlibResnetOnnx(cache_dir=tmp_path)
    out = embedder.embed_chips(np.zeros((0, 150, 150, 3), np.uint8))
    assert out.shape == (0, 128)
    assert out.dtype == np.float32
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("chips", "message"),
    [
        (np.zeros((150, 150, 3), np.uint8), "shape"),
        (np.zeros((1, 112, 112, 3), np.uint8), "shape"),
        (np.zeros((1, 150, 150, 4), np.uint8), "shape"),
        (np.zeros((1, 150, 150, 3), np.float32), "uint8"),
        ([[0]], "numpy array"),
    ],
)
def test_bad_input_is_refused(tmp_path: Path, chips: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        port.DlibResnetOnnx(cache_dir=tmp_path).embed_chips(chips)


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        port.DlibResnetOnnx(intra_op_threads=0)
    with pytest.raises(InvalidInputError):
        port.DlibResnetOnnx(max_batch=0)


# ------------------------------------------------------------------ (d) the cache


@pytest.fixture
def build_count(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = port.build_model

    def counting(dat_path: Path, **kwargs: Any) -> Any:
        calls.append(dat_path)
        return real(dat_path, **kwargs)

    monkeypatch.setattr(port, "build_model", counting)
    return calls


def test_cache_is_built_once_and_reused(
    tmp_path: Path, build_count: list[Path], face_chips: Chips
) -> None:
    first = port.cached_model_path(cache_dir=tmp_path)
    assert first.is_file()
    assert DLIB_RESNET.sha256 is not None
    assert DLIB_RESNET.sha256 in first.name
    assert port.cached_model_path(cache_dir=tmp_path) == first
    a = port.DlibResnetOnnx(cache_dir=tmp_path).embed_chips(face_chips[:1])
    b = port.DlibResnetOnnx(cache_dir=tmp_path).embed_chips(face_chips[:1])
    np.testing.assert_array_equal(a, b)
    assert len(build_count) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp files left


def test_damaged_cache_is_rebuilt(
    tmp_path: Path, build_count: list[Path], face_chips: Chips
) -> None:
    path = port.cached_model_path(cache_dir=tmp_path)
    path.write_bytes(b"not an onnx graph")
    out = port.DlibResnetOnnx(cache_dir=tmp_path).embed_chips(face_chips[:1])
    assert out.shape == (1, 128)
    assert len(build_count) == 2
    assert path.stat().st_size > 20_000_000


def test_default_cache_dir_reads_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library reads no environment: FACEINDEX_CACHE_DIR is the entry points' business,
    # and reaches the embedder as cache_dir=.
    before = default_cache_dir()
    monkeypatch.setenv("FACEINDEX_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == before != tmp_path
    assert default_cache_dir().name == "faceindex"


def test_embedders_build_the_graph_in_their_cache_dir(tmp_path: Path) -> None:
    fusion = FusionEmbedder(threads=1, cache_dir=tmp_path / "fusion")
    assert fusion.dlib.cache_dir == tmp_path / "fusion"
    embedder = DlibResnetEmbedder(threads=1, cache_dir=tmp_path / "dlib")
    embedder.warm_up()
    built = [p.name for p in (tmp_path / "dlib").iterdir()]
    assert len(built) == 1 and built[0].startswith("dlib_resnet_v1-")


def test_unwritable_cache_falls_back_to_memory(tmp_path: Path, face_chips: Chips) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    cache_dir = blocker / "cache"  # cannot be created: its parent is a file
    with pytest.raises(port.GraphCacheError):
        port.cached_model_path(cache_dir=cache_dir)
    out = port.DlibResnetOnnx(cache_dir=cache_dir).embed_chips(face_chips[:2])
    expected = port.DlibResnetOnnx(cache_dir=tmp_path / "ok").embed_chips(face_chips[:2])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_stale_temp_files_are_swept(tmp_path: Path) -> None:
    old = tmp_path / ".dlib_resnet_v1-abc.onnx.x1.tmp"
    young = tmp_path / ".dlib_resnet_v1-abc.onnx.x2.tmp"
    for leftover in (old, young):
        leftover.write_bytes(b"partial")
    os.utime(old, (0, 0))
    port.cached_model_path(cache_dir=tmp_path)
    assert not old.exists()
    assert young.exists()  # may belong to a build in progress elsewhere


def test_options_do_not_change_results(tmp_path: Path, face_chips: Chips) -> None:
    default = port.DlibResnetOnnx(cache_dir=tmp_path).embed_chips(face_chips)
    quiet = port.DlibResnetOnnx(cache_dir=tmp_path, intra_op_threads=1, allow_spinning=False)
    np.testing.assert_allclose(quiet.embed_chips(face_chips), default, rtol=0, atol=1e-6)
