"""Gallery commands end to end through the CLI: JSON contract, exit codes, erasure, keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceindex.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def gallery_args(tmp_path: Path) -> list[str]:
    return ["--gallery", str(tmp_path / "cli.db")]


def test_enroll_identify_people_remove(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, gallery_args: list[str]
) -> None:
    f = fixtures_dir
    code, out, _ = run(
        capsys,
        "enroll",
        "Barack Obama",
        str(f / "obama.jpg"),
        str(f / "obama2.jpg"),
        *gallery_args,
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert report["person"]["name"] == "Barack Obama" and report["person"]["templates"] == 2
    assert [p["status"] for p in report["photos"]] == ["accepted", "accepted"]

    code, out, _ = run(capsys, "enroll", "Joe Biden", str(f / "two_people.jpg"), *gallery_args)
    assert code == 8 and "two_people.jpg: rejected: several faces of similar size" in out

    code, out, _ = run(
        capsys,
        "identify",
        str(f / "obama3.jpg"),
        str(f / "two_people.jpg"),
        *gallery_args,
        "--json",
    )
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["path"].endswith("obama3.jpg")
    (face,) = first["faces"]
    assert {"bbox", "person", "similarity", "runner_up"} <= set(face)
    assert face["person"] == "Barack Obama" and face["runner_up"] is None
    assert sorted(str(x["person"]) for x in second["faces"]) == ["Barack Obama", "None"]

    code, out, _ = run(capsys, "people", "list", *gallery_args, "--json")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["Barack Obama"]
    code, out, _ = run(capsys, "people", "rename", "Barack Obama", "Obama", *gallery_args)
    assert code == 0
    code, out, _ = run(capsys, "people", "show", "Obama", *gallery_args, "--json")
    assert len(json.loads(out)["template_list"]) == 2
    code, _, err = run(capsys, "people", "remove", "Obama", *gallery_args)
    assert code == 2 and "--yes" in err  # no terminal to confirm on
    code, out, _ = run(capsys, "people", "remove", "Obama", "--yes", *gallery_args, "--json")
    assert code == 0 and json.loads(out)["templates"] == 2
    code, _, _ = run(capsys, "people", "show", "Obama", *gallery_args)
    assert code == 6

    code, out, _ = run(capsys, "audit", *gallery_args, "--json")
    actions = [json.loads(line)["action"] for line in out.splitlines()]
    assert {"enroll", "identify", "rename", "delete"} <= set(actions)
    code, out, _ = run(capsys, "index", "rebuild", *gallery_args, "--json")
    assert code == 0 and json.loads(out)["templates"] == 0


def test_bulk_folders_and_errors(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path, gallery_args: list[str]
) -> None:
    import shutil

    tree = tmp_path / "people"
    (tree / "obama").mkdir(parents=True)
    (tree / "biden").mkdir()
    shutil.copy(fixtures_dir / "obama.jpg", tree / "obama")
    shutil.copy(fixtures_dir / "obama2.jpg", tree / "obama")
    shutil.copy(fixtures_dir / "biden.jpg", tree / "biden")
    shutil.copy(fixtures_dir / "two_people.jpg", tree / "biden")
    code, _out, err = run(capsys, "enroll", "--folders", str(tree), *gallery_args)
    assert code == 8
    assert "4 photos of 2 people" in err and "3 accepted" in err
    assert f"  {tree / 'biden' / 'two_people.jpg'}: several faces of similar size" in err
    assert "photos/s" in err
    code, _, err = run(capsys, "enroll", "--folders", str(tree), *gallery_args)
    assert "3 already enrolled" in err
    assert run(capsys, "enroll", "--folders", str(tmp_path / "nope"), *gallery_args)[0] == 6
    assert run(capsys, "enroll", "Someone", *gallery_args)[0] == 2
    bad = tmp_path / "bad.db"
    bad.write_text("garbage" * 100)
    assert run(capsys, "people", "list", "--gallery", str(bad))[0] == 9


def test_encrypted_gallery_through_cli(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path, gallery_args: list[str]
) -> None:
    key1, key2 = tmp_path / "k1", tmp_path / "k2"
    assert run(capsys, "keys", "generate", "--out", str(key1))[0] == 0
    assert run(capsys, "keys", "generate", "--out", str(key2))[0] == 0
    assert run(capsys, "keys", "generate", "--out", str(key2))[0] == 2  # never overwrite
    assert oct(key1.stat().st_mode & 0o777) == "0o600"
    code, _, _ = run(
        capsys,
        "enroll",
        "Obama",
        str(fixtures_dir / "obama.jpg"),
        *gallery_args,
        "--key-file",
        str(key1),
    )
    assert code == 0
    code, _, err = run(capsys, "identify", str(fixtures_dir / "obama3.jpg"), *gallery_args)
    assert code == 7 and "encrypted" in err
    code, _, err = run(
        capsys, "identify", str(fixtures_dir / "obama3.jpg"), *gallery_args, "--key-file", str(key2)
    )
    assert code == 7 and "wrong key" in err
    code, out, _ = run(
        capsys,
        "keys",
        "rotate",
        "--new-key-file",
        str(key2),
        *gallery_args,
        "--key-file",
        str(key1),
    )
    assert code == 0 and "re-encrypted 1 template with " in out
    code, out, _ = run(
        capsys,
        "identify",
        str(fixtures_dir / "obama3.jpg"),
        *gallery_args,
        "--key-file",
        str(key2),
        "--json",
    )
    assert code == 0 and json.loads(out)["faces"][0]["person"] == "Obama"
