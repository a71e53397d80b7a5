"""Writing cloaked photos (format, metadata, atomic writes), folder planning, reports."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.cloak.files import encode, output_format, read_metadata, write_atomically
from faceindex.cloak.folder import folder_jobs
from faceindex.cloak.report import CloakedFace, CloakReport
from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.types import BBox

_ORIENTATION, _MAKE = 0x0112, 0x010F


def _jpeg_with_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    exif[_MAKE] = "TestCam"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 10, 10)).save(
        buffer, "JPEG", exif=exif.tobytes(), icc_profile=b"fake-icc-profile"
    )
    return buffer.getvalue()


def test_metadata_kept_with_orientation_reset() -> None:
    meta = read_metadata(_jpeg_with_exif(6))
    assert meta.icc == b"fake-icc-profile"
    pixels = np.zeros((20, 40, 3), np.uint8)
    for fmt in ("JPEG", "PNG", "WEBP"):
        with Image.open(io.BytesIO(encode(pixels, fmt, meta=meta))) as im:
            assert im.format == fmt and im.size == (40, 20)
            exif = im.getexif()
            assert exif[_ORIENTATION] == 1 and exif[_MAKE] == "TestCam"
            assert im.info.get("icc_profile") == b"fake-icc-profile"


def test_metadata_of_a_bare_or_broken_file_is_empty() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    assert read_metadata(buffer.getvalue()).exif is None
    assert read_metadata(b"not an image").exif is None


def test_png_and_webp_are_lossless_jpeg_is_quality_95() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    for fmt in ("PNG", "WEBP"):
        decoded = np.asarray(Image.open(io.BytesIO(encode(pixels, fmt))).convert("RGB"))
        assert np.array_equal(decoded, pixels)
    jpeg = encode(pixels, "JPEG")
    assert jpeg[:3] == b"\xff\xd8\xff"
    with pytest.raises(InvalidInputError):
        encode(pixels, "GIF")


def test_output_format_by_suffix() -> None:
    assert output_format("a/b.JPG") == "JPEG" and output_format("x.png") == "PNG"
    assert output_format("x.webp") == "WEBP"
    with pytest.raises(InvalidInputError, match=r"\.gif"):
        output_format("x.gif")


def test_write_atomically_leaves_no_temporary_file(tmp_path: Path) -> None:
    dst = tmp_path / "deep" / "out.png"
    write_atomically(dst, b"data")
    write_atomically(dst, b"new")
    assert dst.read_bytes() == b"new"
    assert [p.name for p in dst.parent.iterdir()] == ["out.png"]


def test_folder_jobs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for name in ("a.jpg", "sub/b.png", "c.tif", ".hidden.jpg", ".cache/d.jpg", "notes.txt"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(b"x")
    inside = src / "out"  # an output folder inside the input folder
    (inside / "old.png").parent.mkdir(parents=True)
    (inside / "old.png").write_bytes(b"x")
    jobs = folder_jobs(src, inside)
    assert [
        (j.src.relative_to(src).as_posix(), j.dst.relative_to(inside).as_posix()) for j in jobs
    ] == [
        ("a.jpg", "a.jpg"),
        ("c.tif", "c.png"),
        ("sub/b.png", "sub/b.png"),
    ]
    with pytest.raises(NotFoundError):
        folder_jobs(tmp_path / "missing", tmp_path / "o")
    with pytest.raises(InvalidInputError):
        folder_jobs(src, src)
    with pytest.raises(InvalidInputError):
        folder_jobs(src, src / "a.jpg")


def test_report_json() -> None:
    face = CloakedFace(
        bbox=BBox(1.0, 2.0, 30.0, 40.0),
        similarity_before={"m": 0.99999},
        similarity_after={"m": 0.12345},
        psnr=math.inf,
        ssim=0.96789,
        thresholds={"m": 0.5, "n": 0.5},
    )
    report = CloakReport("in.jpg", "out.jpg", (face,), 40.0, 0.99, "medium", 1.0)
    assert report.as_dict() == {
        "path": "in.jpg",
        "out": "out.jpg",
        "faces": [
            {
                "bbox": [1.0, 2.0, 30.0, 40.0],
                "similarity_before": {"m": 1.0},
                "similarity_after": {"m": 0.1235},
                "psnr": None,
                "ssim": 0.9679,
            }
        ],
    }
    assert face.protected_from == ("m",)  # "n" was not measured: never counted as protected
