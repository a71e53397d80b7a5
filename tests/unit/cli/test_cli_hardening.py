"""Refused or unambiguous command-line input, and storage failures with their exit code."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import FAKE_SETTINGS, Photos, Result, Run

from faceindex.cli.context import CliContext
from faceindex.cli.main import main
from faceindex.errors import InvalidInputError
from faceindex.gallery import open_gallery

# -- person references: #N is always an id --------------------------------------------


@pytest.mark.slow  # about a second: the fast tier stays fast
def test_hash_number_is_always_an_id(cli: Run, photos: Photos, gallery_path: Path) -> None:
    assert cli("enroll", "Ann", photos.of(1)).code == 0  # id 1
    assert cli("enroll", "Bob", photos.of(2)).code == 0  # id 2
    with (
        open_gallery(gallery_path, settings=FAKE_SETTINGS) as g,
        pytest.raises(InvalidInputError, match="id reference"),
    ):
        g.create_person("#2")  # the library refuses such names now
    # ... but a gallery from before may hold one: made here behind the library's back.
    with sqlite3.connect(gallery_path) as conn:
        conn.execute(
            "INSERT INTO persons (name, metadata, created_at, updated_at)"
            " VALUES ('#2', '{}', '2026-01-01', '2026-01-01')"
        )
    with open_gallery(gallery_path, settings=FAKE_SETTINGS) as g:
        assert g.person("name:#2".removeprefix("name:")).id == 3

    assert cli("people", "show", "#2", "--json").json["name"] == "Bob"
    r = cli("people", "show", "name:#2", "--json")
    assert r.code == 0 and r.json["id"] == 3
    r = cli("audit", "--person", "name:#2", "--json")
    assert r.code == 0

    r = cli("people", "remove", "#2", "--yes", "--json")
    assert r.code == 0 and r.json["deleted"] == 2  # Bob, never the person named "#2"
    names = [p["name"] for p in cli("people", "list", "--json").lines]
    assert sorted(names) == ["#2", "Ann"]

    r = cli("people", "show", "#2")  # id 2 is gone: not found, with the escape named
    assert r.code == 6 and "name:#2" in r.err
    assert cli("people", "show", "name:#1").code == 6  # a name never falls back to an id
    r = cli("people", "rename", "name:#2", "Carl", "--json")
    assert r.code == 0 and r.json["id"] == 3 and r.json["name"] == "Carl"


def test_names_that_read_as_ids_are_refused(cli: Run, photos: Photos, tmp_path: Path) -> None:
    r = cli("enroll", "#7", photos.of(1), "--json")
    assert r.code == 3 and r.json["error"]["code"] == "invalid_input"
    assert "looks like a person id" in r.err
    assert cli("enroll", "Ann", photos.of(1)).code == 0
    assert cli("people", "rename", "Ann", " #9 ").code == 3
    (photos.people / "#3").mkdir()
    (photos.people / "#3" / "a.png").write_bytes(photos.of(1, 1).read_bytes())
    r = cli("enroll", "--folders", photos.people)
    assert r.code == 3 and "'#3'" in r.err
    assert [p["name"] for p in cli("people", "list", "--json").lines] == ["Ann"]  # nothing


# -- thresholds ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["-1.5", "1.01", "nan", "inf", "-inf", "abc"])
def test_threshold_must_be_a_cosine(cli: Run, photos: Photos, bad: str) -> None:
    r = cli("verify", photos.of(1), photos.of(1, 1), f"--threshold={bad}")
    assert r.code == 2 and "--threshold" in r.err
    assert cli("identify", photos.of(1), f"--threshold={bad}").code == 2


def test_threshold_bounds_are_accepted(cli: Run, photos: Photos) -> None:
    assert cli("verify", photos.of(1), photos.of(2), "--threshold", "-1", "--json").code == 0
    r = cli("verify", photos.of(1), photos.of(1, 1), "--threshold", "1", "--json")
    assert r.code in (0, 1) and r.json["threshold"] == 1.0


def test_a_bad_threshold_in_the_environment_is_a_config_error(
    capsys: pytest.CaptureFixture[str], photos: Photos
) -> None:
    environ = {
        "FACEINDEX_DETECTION__DETECTOR": "fake",
        "FACEINDEX_EMBEDDING__EMBEDDER": "fake",
        "FACEINDEX_EMBEDDING__THRESHOLD": "nan",
    }
    code = main(
        ["verify", str(photos.of(1)), str(photos.of(1, 1))],
        context_factory=lambda args: CliContext(args, environ=environ),
    )
    assert code == 7 and "from -1 to 1" in capsys.readouterr().err


# -- audit times ----------------------------------------------------------------------------


def test_audit_times_are_iso_8601(cli: Run, photos: Photos) -> None:
    cli("enroll", "Ann", photos.of(1))
    for bad in ("garbage", "yesterday", "2024-13-01", ""):
        r = cli("audit", "--since", bad)
        assert r.code == 2 and "ISO 8601" in r.err
        assert cli("audit", "--until", bad).code == 2
    assert len(cli("audit", "--since", "2000-01-01", "--json").lines) >= 1
    assert cli("audit", "--since", "2999-01-01", "--json").out == ""
    assert cli("audit", "--until", "2000-01-01T12:00", "--json").out == ""
    r = cli("audit", "--since", "2000-01-01T00:00:00+02:00", "--until", "2999-12-31", "--json")
    assert r.code == 0 and len(r.lines) >= 1


# -- pairs outside --root --------------------------------------------------------------------


def test_verify_pairs_refuses_paths_outside_root(cli: Run, photos: Photos, tmp_path: Path) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text(
        "a,b\np1/0.png,p1/1.png\n../../../../etc/passwd,p1/0.png\n/etc/passwd,p1/0.png\n"
    )
    r = cli("verify", "--pairs", csv, "--root", photos.people, "--json")
    assert r.code == 8
    ok, up, absolute = r.lines
    assert "similarity" in ok
    assert up["error"]["code"] == "invalid_input" and "outside the root" in up["error"]["message"]
    assert absolute["error"]["code"] == "invalid_input"
    assert "absolute paths are refused" in absolute["error"]["message"]

    # without --root the CSV is the user's own: an absolute path is taken as written
    own = tmp_path / "own.csv"
    own.write_text(f"a,b\n{photos.of(1)},{photos.of(1, 1)}\n")
    r = cli("verify", "--pairs", own, "--json")
    assert r.code == 0 and r.lines[0]["match"] is True

    labelled = tmp_path / "labelled.csv"
    labelled.write_text("a,b,same\np1/0.png,p1/1.png,1\np1/0.png,../../x.png,0\n")
    r = cli("eval", "pairs", labelled, "--root", photos.people, "--out", tmp_path / "rep")
    assert r.code == 3 and "line 3" in r.err and not (tmp_path / "rep").exists()


# -- storage failures and folders given as photos -------------------------------------------


def _run_with(gallery: Path, capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Result:
    settings = dataclasses.replace(FAKE_SETTINGS)
    code = main(
        [str(a) for a in (*argv, "--gallery", gallery)],
        context_factory=lambda args: CliContext(args, settings=settings),
    )
    out, err = capsys.readouterr()
    return Result(code, out, err)


def test_a_gallery_under_a_file_is_a_storage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], photos: Photos
) -> None:
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    for argv in (("enroll", "Ann", photos.of(1)), ("keys", "create", "--name", "k")):
        r = _run_with(a_file / "x.db", capsys, *argv, "--json")  # writers try to create it
        assert r.code == 9, r.err
        assert r.json["error"]["code"] == "storage_error"
        assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    r = _run_with(a_file / "x.db", capsys, "people", "list", "--json")  # a reader does not
    assert r.code == 6 and r.json["error"]["code"] == "not_found"


@pytest.fixture()
def immutable(tmp_path: Path) -> Iterator[list[Path]]:
    """Paths made immutable with chattr (read-only even to root); skipped where chattr
    cannot (no such tool or capability). Made writable again afterwards."""
    made: list[Path] = []
    yield made
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def _make_immutable(path: Path, made: list[Path]) -> None:
    try:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    except FileNotFoundError:
        pytest.skip("no chattr here")
    if done.returncode != 0:
        pytest.skip("chattr +i is not permitted here")
    made.append(path)


def test_a_read_only_gallery_is_a_storage_error(
    cli: Run, photos: Photos, gallery_path: Path, immutable: list[Path]
) -> None:
    assert cli("enroll", "Ann", photos.of(1)).code == 0
    _make_immutable(gallery_path, immutable)
    assert cli("people", "list", "--json").code == 0  # reading still works
    for argv in (
        ("enroll", "Bob", photos.of(2)),
        ("people", "rename", "Ann", "Anna"),
        ("people", "remove", "Ann", "--yes"),
    ):
        r = cli(*argv, "--json")
        assert r.code == 9, r.err
        assert r.json["error"]["code"] == "storage_error"
        assert "Traceback" not in r.err and "internal error" not in r.err


def test_a_read_only_gallery_folder_is_a_storage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], immutable: list[Path]
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    _make_immutable(folder, immutable)
    for gallery in (folder / "new.db", folder / "sub" / "new.db"):
        r = _run_with(gallery, capsys, "keys", "create", "--name", "k")
        assert r.code == 9 and "Traceback" not in r.err
        assert _run_with(gallery, capsys, "people", "list").code == 6  # never created


def test_a_folder_given_as_a_photo_is_invalid_input(
    cli: Run, photos: Photos, gallery_path: Path
) -> None:
    r = cli("enroll", "Ann", photos.of(1), photos.people, "--json")
    assert r.code == 3 and r.json["error"]["code"] == "invalid_input"
    assert "is a folder" in r.err
    assert not gallery_path.exists()  # refused before anything was enrolled
    cli("enroll", "Ann", photos.of(1))
    r = cli("identify", photos.people, "--json")
    assert r.code == 3 and r.json["error"]["code"] == "invalid_input"
    assert "is a folder" in r.json["error"]["message"]
    r = cli("verify", photos.people, photos.of(1), "--json")
    assert r.code == 3 and "is a folder" in r.err
