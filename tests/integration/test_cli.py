"""The command line's machine contract: JSON shapes, exit codes, per-pair errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faceindex.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["detect"], ["verify"], ["models"]):
        code, out, _ = run(capsys, *argv, "--help")
        assert code == 0 and "usage: faceindex" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], fixtures_dir: Path) -> None:
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys, "detect")[0] == 2
    code, _, err = run(capsys, "verify", str(fixtures_dir / "obama.jpg"))
    assert code == 2 and "two photos" in err
    code, _, err = run(capsys, "verify", "a", "b", "--pairs", "p.csv")
    assert code == 2


def test_detect_json_contract(capsys: pytest.CaptureFixture[str], fixtures_dir: Path) -> None:
    code, out, _ = run(
        capsys,
        "detect",
        str(fixtures_dir / "two_people.jpg"),
        str(fixtures_dir / "obama.jpg"),
        "--json",
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [len(r["faces"]) for r in lines] == [2, 1]
    face = lines[0]["faces"][0]
    assert set(face) == {"bbox", "score", "landmarks", "quality"}
    assert len(face["bbox"]) == 4 and face["bbox"][0] < face["bbox"][2]
    assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
    assert {"score", "sharpness", "brightness", "yaw", "pitch", "roll", "issues"} <= set(
        face["quality"]
    )
    assert lines[0]["path"].endswith("two_people.jpg")


def test_detect_human_output_and_errors(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "detect", str(fixtures_dir / "two_people.jpg"))
    assert code == 0 and "2 faces" in out
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    code, out, err = run(capsys, "detect", str(bad), "--json")
    assert code == 3
    assert json.loads(out)["error"]["code"] == "image_decode_error"
    assert "bad.jpg" in err
    code, _, _ = run(capsys, "detect", str(tmp_path / "nope.jpg"))
    assert code == 6
    # a batch with one bad file still reports the good one, and exits 8
    code, out, _ = run(capsys, "detect", str(bad), str(fixtures_dir / "obama.jpg"), "--json")
    assert code == 8
    assert [("error" in json.loads(line)) for line in out.splitlines()] == [True, False]


def test_verify_exit_codes_and_json(capsys: pytest.CaptureFixture[str], fixtures_dir: Path) -> None:
    code, out, _ = run(
        capsys,
        "verify",
        str(fixtures_dir / "obama.jpg"),
        str(fixtures_dir / "obama2.jpg"),
        "--json",
    )
    result = json.loads(out)
    assert code == 0 and result["match"] is True
    assert {"similarity", "match", "threshold", "model", "face_a", "face_b"} <= set(result)
    assert result["faces_a"] == [result["bbox_a"]] and result["face_b"] == 0
    assert result["similarity"] >= result["threshold"]
    code, out, _ = run(
        capsys, "verify", str(fixtures_dir / "obama.jpg"), str(fixtures_dir / "biden.jpg")
    )
    assert code == 1 and "different people" in out
    code, out, _ = run(
        capsys,
        "verify",
        str(fixtures_dir / "obama.jpg"),
        str(fixtures_dir / "biden.jpg"),
        "--threshold",
        "-1",
        "--json",
    )
    assert code == 0 and json.loads(out)["threshold"] == -1


def test_verify_no_face_exit_4(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path
) -> None:
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (120, 130, 140)).save(blank)
    code, out, err = run(capsys, "verify", str(blank), str(fixtures_dir / "obama.jpg"), "--json")
    assert code == 4
    assert json.loads(out)["error"]["code"] == "no_face" and "blank.png" in err


def test_verify_pairs_file(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(fixtures_dir, photos)
    (photos / "broken.jpg").write_bytes((fixtures_dir / "obama.jpg").read_bytes()[:500])
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(
        "a,b,same,note\n"
        "obama.jpg,obama3.jpg,1,x\n"
        "obama.jpg,biden.jpg,0,y\n"
        "obama.jpg,broken.jpg,1,z\n"
        "missing.jpg,obama.jpg,1,w\n"
        "two_people.jpg,obama2.jpg,1,the subject (most prominent face: Obama) is used\n"
    )
    code, out, _ = run(capsys, "verify", "--pairs", str(csv_path), "--root", str(photos), "--json")
    assert code == 8
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r.get("match") for r in rows] == [True, False, None, None, True]
    assert rows[2]["error"]["code"] == "image_decode_error"
    assert rows[3]["error"]["code"] == "not_found"
    assert set(rows[0]) == {"a", "b", "similarity", "match"}
    # --root defaults to the CSV's own folder
    local = photos / "pairs.csv"
    local.write_text("a,b\nobama.jpg,obama2.jpg\n")
    code, out, _ = run(capsys, "verify", "--pairs", str(local), "--json")
    assert code == 0 and json.loads(out)["match"] is True


def test_verify_pairs_bad_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("left,right\nx.jpg,y.jpg\n")
    code, _, err = run(capsys, "verify", "--pairs", str(bad))
    assert code == 3 and "'a' and 'b'" in err
    code, _, _ = run(capsys, "verify", "--pairs", str(tmp_path / "none.csv"))
    assert code == 6
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    assert run(capsys, "verify", "--pairs", str(binary))[0] == 3


def test_unknown_model_is_config_error(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path
) -> None:
    code, _, err = run(capsys, "detect", str(fixtures_dir / "obama.jpg"), "--detector", "retina")
    assert code == 7 and "yunet" in err


def test_console_script_runs(fixtures_dir: Path) -> None:
    exe = Path(sys.executable).with_name("faceindex")
    proc = subprocess.run(
        [
            str(exe),
            "verify",
            str(fixtures_dir / "obama.jpg"),
            str(fixtures_dir / "obama3.jpg"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["match"] is True
