"""Refused input below the CLI: image formats, pairs paths, thresholds, API key audit."""

from __future__ import annotations

import io
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.apikeys import KeyRing
from faceindex.config import EmbeddingSettings, SearchSettings, Settings
from faceindex.errors import ConfigError, ConflictError, ImageDecodeError, InvalidInputError
from faceindex.gallery import open_gallery
from faceindex.io.image import FORMATS, load_image
from faceindex.io.pairs import read_pairs

# -- image formats ----------------------------------------------------------------------

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\nshowpage\n"


def test_eps_is_refused_before_pillow_tries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import EpsImagePlugin

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the EPS decoder (Ghostscript) must never run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", never)
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", never)
    path = tmp_path / "photo.jpg"  # the name lies; the bytes decide
    path.write_bytes(EPS)
    for source in (path, EPS):
        with pytest.raises(ImageDecodeError, match="unsupported image format EPS") as info:
            load_image(source)
        assert info.value.details["format"] == "EPS"


def test_other_pillow_formats_are_refused() -> None:
    rgb = np.full((8, 8, 3), 120, np.uint8)
    for fmt in ("ICO", "TGA", "PCX", "SGI"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        with pytest.raises(ImageDecodeError, match="supported"):
            load_image(buf.getvalue())


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "RGB"),
        ("PNG", "RGBA"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("GIF", "P"),
        ("TIFF", "RGB"),
        ("PPM", "RGB"),
        ("PPM", "L"),  # PGM
    ],
)
def test_each_allowed_format_still_decodes(fmt: str, mode: str) -> None:
    assert fmt in FORMATS
    im = Image.fromarray(np.full((10, 12, 3), 200, np.uint8)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt)
    rgb = load_image(buf.getvalue())
    assert rgb.shape == (10, 12, 3) and rgb.dtype == np.uint8


def test_a_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a folder") as info:
        load_image(tmp_path)
    assert info.value.code == "invalid_input"


# -- pairs paths ------------------------------------------------------------------------


def _csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_root_confines_the_pairs_paths(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "in").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (root / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    f = read_pairs(_csv(tmp_path / "p.csv", "a,b\nx,y\n"), root=root)
    assert f.confined
    assert f.resolve("in/a.jpg") == root / "in" / "a.jpg"
    assert f.resolve("in/../b.jpg") == root / "in" / ".." / "b.jpg"  # still inside
    for bad in ("../secret.jpg", "../../etc/passwd", "in/../../secret.jpg", "link.jpg"):
        with pytest.raises(InvalidInputError, match="outside the root"):
            f.resolve(bad)
    with pytest.raises(InvalidInputError, match="absolute paths are refused"):
        f.resolve("/etc/passwd")


def test_without_root_the_csv_paths_are_taken_as_written(tmp_path: Path) -> None:
    f = read_pairs(_csv(tmp_path / "d" / "p.csv", "a,b\nx,y\n"))
    assert not f.confined
    assert f.resolve("/abs/a.jpg") == Path("/abs/a.jpg")
    assert f.resolve("../up.jpg") == tmp_path / "d" / ".." / "up.jpg"


def test_a_labelled_file_with_an_escaping_path_is_refused_whole(tmp_path: Path) -> None:
    text = "a,b,same\nin/a.jpg,in/b.jpg,1\nin/a.jpg,../../etc/passwd,0\n"
    csv_path = _csv(tmp_path / "p.csv", text)
    with pytest.raises(InvalidInputError, match=r"line 3: .*outside the root") as info:
        read_pairs(csv_path, root=tmp_path / "photos", labelled=True)
    assert info.value.details["line"] == 3
    assert len(read_pairs(csv_path, labelled=True).pairs) == 2  # no --root: as written


# -- thresholds in settings ------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1.5, 1.01, math.nan, math.inf, -math.inf])
def test_settings_refuse_thresholds_that_are_no_cosine(bad: float) -> None:
    with pytest.raises(ConfigError, match="from -1 to 1"):
        EmbeddingSettings(threshold=bad)
    with pytest.raises(ConfigError, match="from -1 to 1"):
        SearchSettings(threshold=bad)


def test_settings_accept_the_cosine_range() -> None:
    for ok in (-1.0, 0.0, 0.42, 1.0, None):
        assert EmbeddingSettings(threshold=ok).threshold == ok
        assert SearchSettings(threshold=ok).threshold == ok
    with pytest.raises(ConfigError, match="margin"):
        SearchSettings(margin=math.nan)


@pytest.mark.parametrize("raw", ["nan", "inf", "-1.5", "2"])
def test_environment_thresholds_are_checked(raw: str) -> None:
    for key in ("FACEINDEX_EMBEDDING__THRESHOLD", "FACEINDEX_SEARCH__THRESHOLD"):
        with pytest.raises(ConfigError, match="from -1 to 1"):
            Settings.from_env({key: raw})
    assert Settings.from_env({"FACEINDEX_EMBEDDING__THRESHOLD": "0.5"}).embedding.threshold == 0.5


# -- API keys ---------------------------------------------------------------------------


def _ring(tmp_path: Path) -> KeyRing:
    db = tmp_path / "g.db"
    with open_gallery(db):
        pass
    return KeyRing.open(db)


def test_key_changes_record_the_caller_as_actor(tmp_path: Path) -> None:
    with _ring(tmp_path) as ring:
        key, _ = ring.create("ci", "read", actor="key:admin")
        ring.revoke(key.id, actor="key:admin")
        other, _ = ring.create("ops", "read")  # default: the ring's own actor
        ring.revoke(other.id)
    with sqlite3.connect(tmp_path / "g.db") as conn:
        rows = conn.execute("SELECT action, actor FROM audit ORDER BY id").fetchall()
    assert rows == [
        ("api_key_create", "key:admin"),
        ("api_key_revoke", "key:admin"),
        ("api_key_create", "api"),
        ("api_key_revoke", "api"),
    ]


def test_key_names_are_unique_among_active_keys(tmp_path: Path) -> None:
    with _ring(tmp_path) as ring:
        first, _ = ring.create("ops", "read")
        with pytest.raises(ConflictError, match="already exists"):
            ring.create(" ops ", "admin")
        assert [k.name for k in ring.keys(include_revoked=False)] == ["ops"]
        ring.create("Ops", "read")  # another name (names are exact)
        ring.revoke(first.id)
        again, _ = ring.create("ops", "read")  # a revoked key's name is free again
        assert again.id != first.id
