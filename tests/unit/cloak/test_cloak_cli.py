"""``faceindex cloak`` on the fake detector and the stand-in net: JSON shape, formats,
errors and exit codes, folder mode (resumable), determinism, and no torch at start-up."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from faceindex.cli.context import CliContext
from faceindex.cli.main import main
from faceindex.cloak import budget as budget_module
from faceindex.cloak.budget import Budget, Strength
from faceindex.config import DetectionSettings, EmbeddingSettings, Settings
from faceindex.io.image import load_image
from faceindex.testing.synthetic import synthetic_photo_bytes

pytestmark = pytest.mark.slow  # each cloak runs a few attack steps (~0.3-1 s)

FAKE = Settings(
    detection=DetectionSettings(detector="fake"), embedding=EmbeddingSettings(embedder="fake")
)
FACE_KEYS = {"bbox", "similarity_before", "similarity_after", "psnr", "ssim"}


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


Run = Callable[..., Result]


@pytest.fixture()
def cloak_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    make_cloaker: Callable[[], Any],
) -> Run:
    """``cloak_cli(*argv)``: ``faceindex ARGV`` with the fake detector, the stand-in net and
    two-step budgets."""
    for strength in Strength:
        monkeypatch.setitem(
            budget_module.BUDGETS,
            strength,
            Budget(epsilon=8.0, min_ssim=0.5, steps=2, transforms=False),
        )
    monkeypatch.setattr("faceindex.cli.commands.cloak.make_cloaker", lambda ctx: make_cloaker())

    def run(*argv: str | Path) -> Result:
        code = main(
            [str(a) for a in argv], context_factory=lambda args: CliContext(args, settings=FAKE)
        )
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def _photo(path: Path, *people: int, variant: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(synthetic_photo_bytes(list(people), variant=variant))
    return path


def test_single_photo_json_and_untouched_background(cloak_cli: Run, tmp_path: Path) -> None:
    src = _photo(tmp_path / "in.png", 1, 2)
    dst = tmp_path / "out" / "cloaked.png"
    r = cloak_cli("cloak", src, dst, "--json", "--strength", "low")
    assert r.code == 0, r.err
    (record,) = r.lines
    assert set(record) == {"path", "out", "faces"}
    assert record["path"] == str(src) and record["out"] == str(dst)
    assert len(record["faces"]) == 2
    for face in record["faces"]:
        assert set(face) == FACE_KEYS
        assert set(face["similarity_after"]) == {"tiny-v1"} == set(face["similarity_before"])
        assert face["similarity_before"]["tiny-v1"] == pytest.approx(1.0, abs=1e-3)
        assert face["similarity_after"]["tiny-v1"] < 1.0
        assert len(face["bbox"]) == 4 and 0 < face["ssim"] <= 1
    clean, cloaked = load_image(src), load_image(dst)
    assert clean.shape == cloaked.shape and not np.array_equal(clean, cloaked)
    assert np.array_equal(clean[:40], cloaked[:40])  # far from every face: bit for bit
    changed = np.argwhere((clean != cloaked).any(-1))
    for y, x in changed[:: max(1, len(changed) // 50)]:  # every change lies near a face
        near = [
            f["bbox"][0] - 150 <= x <= f["bbox"][2] + 150
            and f["bbox"][1] - 150 <= y <= f["bbox"][3] + 150
            for f in record["faces"]
        ]
        assert any(near)


def test_human_text_and_jpeg_by_suffix(cloak_cli: Run, tmp_path: Path) -> None:
    src = _photo(tmp_path / "in.png", 1)
    dst = tmp_path / "cloaked.jpg"
    r = cloak_cli("cloak", src, dst)
    assert r.code == 0, r.err
    assert "cloaked 1 face" in r.out and "tiny-v1" in r.out and "SSIM" in r.out
    assert dst.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG


def test_same_seed_same_bytes(cloak_cli: Run, tmp_path: Path) -> None:
    src = _photo(tmp_path / "in.png", 3)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cloak_cli("cloak", src, a, "--seed", "5").code == 0
    assert cloak_cli("cloak", src, b, "--seed", "5").code == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("make_input", "out_name", "code", "error"),
    [
        (lambda d: _photo(d / "blank.png"), "o.png", 4, "no_face"),
        (lambda d: d / "missing.png", "o.png", 6, "not_found"),
        (lambda d: _photo(d / "in.png", 1), "o.gif", 3, "invalid_input"),
    ],
)
def test_errors_and_exit_codes(
    cloak_cli: Run,
    tmp_path: Path,
    make_input: Callable[[Path], Path],
    out_name: str,
    code: int,
    error: str,
) -> None:
    r = cloak_cli("cloak", make_input(tmp_path), tmp_path / out_name, "--json")
    assert r.code == code, r.err
    assert r.lines[-1]["error"]["code"] == error
    assert not (tmp_path / out_name).exists()


def test_refuses_to_overwrite_its_input(cloak_cli: Run, tmp_path: Path) -> None:
    src = _photo(tmp_path / "in.png", 1)
    before = src.read_bytes()
    r = cloak_cli("cloak", src, src)
    assert r.code == 3 and "another file" in r.err
    assert src.read_bytes() == before


def test_torch_missing_names_the_extra(
    cloak_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    r = cloak_cli("cloak", _photo(tmp_path / "in.png", 1), tmp_path / "o.png", "--json")
    assert r.code == 7
    assert r.lines[0]["error"]["code"] == "config_error"
    assert "pip install 'faceindex[cloak]'" in r.err


def test_folder_mode_is_resumable(cloak_cli: Run, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    _photo(src / "a.png", 1)
    _photo(src / "sub" / "b.png", 2)
    _photo(src / "c.bmp", 4)  # written as PNG
    _photo(src / "none.png")  # no face: fails, the rest go on
    (src / "notes.txt").write_text("not a photo")
    dst = tmp_path / "cloaked"
    r = cloak_cli("cloak", src, dst, "--json")
    assert r.code == 8, r.err  # one of several photos failed
    by_path = {Path(x["path"]).name: x for x in r.lines}
    assert set(by_path) == {"a.png", "b.png", "c.bmp", "none.png"}
    assert by_path["none.png"]["error"]["code"] == "no_face"
    assert set(by_path["a.png"]) == {"path", "out", "faces"}
    outputs = {dst / "a.png", dst / "sub" / "b.png", dst / "c.png"}
    assert {p for p in dst.rglob("*") if p.is_file()} == outputs
    stamps = {p: p.stat().st_mtime_ns for p in outputs}

    again = cloak_cli("cloak", src, dst, "--json")
    skipped = [x for x in again.lines if x.get("skipped")]
    assert len(skipped) == 3 and "skipped 3 already done" in again.err
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps  # not redone

    redo = cloak_cli("cloak", src, dst, "--json", "--overwrite")
    assert not [x for x in redo.lines if x.get("skipped")]
    assert sum(1 for x in redo.lines if "faces" in x) == 3


def test_folder_into_itself_is_refused(cloak_cli: Run, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    _photo(src / "a.png", 1)
    r = cloak_cli("cloak", src, src)
    assert r.code == 3 and "output folder is the input folder" in r.err


def test_help_and_start_up_import_no_torch() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from faceindex.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['cloak', '--help']) == 0\n"
        "import faceindex.cloak.cloaker, faceindex.api.routes.cloak\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
