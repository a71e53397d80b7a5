"""Reports: the files exist, PNGs decode, the HTML is self-contained, the JSON parses."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.eval.protocols import (
    GalleryResult,
    LabelledPair,
    PairsResult,
    evaluate_gallery,
    evaluate_pairs,
)
from faceindex.eval.report import write_report
from faceindex.types import Embedding

PEOPLE = {"ann": "F", "bea": "F", "carl": "M", "dave": "M", "ed": "M"}
_BASE = {p: np.random.default_rng(i).normal(size=16) for i, p in enumerate(sorted(PEOPLE))}


def fake_embed(path: Path) -> Embedding | None:
    """Person vector from the folder name plus noise from the file name; 'noface' fails."""
    if path.stem == "noface":
        return None
    noise = np.random.default_rng(zlib.crc32(path.name.encode())).normal(size=16)
    return Embedding((_BASE[path.parent.name] + 0.6 * noise).astype(np.float32), "fake-v1")


def pairs_result() -> PairsResult:
    names = [f"{p}/{k}.png" for p in sorted(PEOPLE) for k in range(4)] + ["ann/noface.png"]
    pairs = [
        LabelledPair(a, b, a.split("/")[0] == b.split("/")[0])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    return evaluate_pairs(pairs, fake_embed, threshold=0.5, groups=PEOPLE, source="fake.csv")


def gallery_result(root: Path, unknown_fraction: float = 0.4) -> GalleryResult:
    for person in PEOPLE:
        (root / person).mkdir(parents=True, exist_ok=True)
        for k in range(6):
            (root / person / f"{k}.png").touch()
    (root / "ed" / "noface.png").touch()
    return evaluate_gallery(
        root,
        fake_embed,
        threshold=0.5,
        enrol_per_person=2,
        unknown_fraction=unknown_fraction,
        groups=PEOPLE,
        target_fpir=0.1,
    )


def check_report(files: list[Path], result: PairsResult | GalleryResult) -> str:
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    pngs = [f for f in files if f.suffix == ".png"]
    for png in pngs:
        with Image.open(png) as im:
            im.load()
            assert im.format == "PNG" and im.width > 200 and im.height > 200
    page = next(f for f in files if f.name == "report.html").read_text(encoding="utf-8")
    # Self-contained: every image is a data URI of one of the PNG files, nothing external.
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(pngs)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert embedded == {p.read_bytes() for p in pngs}
    for bad in ("http://", "https://", "<script", "<link", "url(", "href="):
        assert bad not in page
    data = json.loads(next(f for f in files if f.name == "report.json").read_text())
    assert data == json.loads(result.to_json())
    return page


@pytest.mark.integration  # renders real plots with matplotlib (seconds)
def test_pairs_report(tmp_path: Path) -> None:
    result = pairs_result()
    files = write_report(result, tmp_path / "out")
    names = [f.name for f in files]
    assert names == [
        "roc.png",
        "det.png",
        "scores.png",
        "groups.png",
        "report.html",
        "report.json",
    ]
    page = check_report(files, result)
    assert "TAR at FAR 0.0001" in page and "ann/noface.png" in page
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["protocol"] == "pairs" and data["failed_photos"] == ["ann/noface.png"]


@pytest.mark.integration  # renders real plots with matplotlib (seconds)
def test_gallery_report(tmp_path: Path) -> None:
    result = gallery_result(tmp_path / "people")
    files = write_report(result, tmp_path / "out")
    names = {f.name for f in files}
    assert {"cmc.png", "open_set.png", "roc.png", "det.png", "scores.png"} <= names
    assert {"groups.png", "groups_open_set.png", "report.html", "report.json"} <= names
    page = check_report(files, result)
    assert "rank-1 identification rate" in page and "FNIR at FPIR 0.1" in page


@pytest.mark.integration  # renders real plots with matplotlib (seconds)
def test_report_without_unknowns_or_groups(tmp_path: Path) -> None:
    result = gallery_result(tmp_path / "people", unknown_fraction=0.0)
    assert result.identification.curve is None and result.split.unknown == ()
    files = write_report(result, tmp_path / "out")
    assert "open_set.png" not in {f.name for f in files}
    check_report(files, result)


def test_report_imports_no_plotting_library_until_used() -> None:
    code = "import sys, faceindex.eval.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.integration  # renders real plots with matplotlib (seconds)
def test_reports_are_repeatable(tmp_path: Path) -> None:
    a = write_report(pairs_result(), tmp_path / "a")
    b = write_report(pairs_result(), tmp_path / "b")
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
