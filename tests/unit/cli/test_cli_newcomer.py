"""What a newcomer meets first: a mistyped gallery, progress, words instead of codes,
suggestions for mistyped commands, exit codes and help that say what they mean."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cli_helpers import FAKE_SETTINGS, Photos, Result, Run

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import MEANINGS
from faceindex.cli.main import build_parser, main
from faceindex.config import RuntimeSettings

# -- a gallery that does not exist --------------------------------------------------------

#: Commands that only read the gallery, or change what is in it: never create it.
READERS: list[tuple[str, ...]] = [
    ("identify", "{photo}"),
    ("people", "list"),
    ("people", "show", "Ann"),
    ("people", "rename", "Ann", "Anna"),
    ("people", "remove", "Ann", "--yes"),
    ("audit",),
    ("audit", "--person", "Ann"),
    ("stats",),
    ("check",),
    ("index", "rebuild"),
    ("reembed",),
    ("keys", "list"),
    ("keys", "revoke", "1"),
    ("encryption-key", "status"),
    ("encryption-key", "rotate", "--decrypt"),
    ("calibrate", "--reset"),
    ("watch", "{clip}"),
    ("anonymize", "{photo}", "{out}", "--keep", "Ann"),
]


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_mistyped_gallery_is_not_found_and_nothing_is_created(
    cli: Run, photos: Photos, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    typo = tmp_path / "galery" / "sub" / "gallery.db"
    values = {"photo": photos.of(1), "clip": photos.of(1), "out": tmp_path / "o.png"}
    r = cli(*(a.format(**values) for a in argv), "--gallery", typo)
    assert r.code == 6, r.err
    assert r.err.startswith(f"faceindex: error: {typo}: no such gallery (given by --gallery)")
    assert not (tmp_path / "galery").exists()  # neither the file nor its folders


def test_a_missing_configured_gallery_is_named(
    cli: Run, photos: Photos, gallery_path: Path
) -> None:
    r = cli("identify", photos.of(1), "--json")  # the fixture's gallery, from the settings
    assert r.code == 6 and r.json["error"]["code"] == "not_found"
    assert f"{gallery_path}: no such gallery (set by $FACEINDEX_GALLERY)" in r.err
    assert not gallery_path.exists()


def test_writers_create_the_gallery_and_say_so(
    cli: Run, photos: Photos, tmp_path: Path, gallery_path: Path
) -> None:
    new = tmp_path / "new" / "folder" / "g.db"
    r = cli("enroll", "Ann", photos.of(1), "--gallery", new, "--json")
    assert r.code == 0 and new.is_file()
    assert r.err == f"faceindex: created a new gallery: {new}\n"
    assert json.loads(r.out)["person"]["name"] == "Ann"  # stdout stays the result
    r = cli("enroll", "Ann", photos.of(1, 1), "--gallery", new)
    assert r.code == 0 and r.err == ""  # it exists now: nothing to say
    assert cli("people", "list", "--gallery", new, "--json").lines[0]["name"] == "Ann"

    r = cli("keys", "create", "--name", "ci")
    assert r.code == 0 and r.err == f"faceindex: created a new gallery: {gallery_path}\n"
    assert cli("keys", "create", "--name", "ci2").err == ""


# -- progress: stderr only, never in the JSON -----------------------------------------------


def test_verbose_progress_goes_to_stderr_and_json_stays_pure(cli: Run, photos: Photos) -> None:
    r = cli("-v", "enroll", "--folders", photos.people, "--json")
    assert r.code == 0
    assert [json.loads(line)["status"] for line in r.out.splitlines()] == ["accepted"] * 6
    assert "enrolling: 6/6 photos (100%) in " in r.err
    r = cli("identify", photos.of(1), photos.of(2), photos.stranger, "--json", "-v")  # -v after
    assert r.code == 0 and len(r.lines) == 3
    assert "identifying: 3/3 photos (100%) in " in r.err
    r = cli("detect", photos.of(1), photos.of(2), "-v")
    assert "detecting: 2/2 photos (100%)" in r.err and "detecting" not in r.out
    pairs = photos.people / "pairs.csv"
    pairs.write_text("a,b\np1/0.png,p1/1.png\np1/0.png,p2/0.png\n")
    r = cli("verify", "--pairs", pairs, "--json", "-v")
    assert len(r.lines) == 2 and "verifying: 2/2 pairs (100%) in " in r.err


def test_no_progress_without_a_terminal_or_verbose(cli: Run, photos: Photos) -> None:
    r = cli("enroll", "--folders", photos.people, "--json")
    assert r.code == 0 and "enrolling" not in r.err
    r = cli("identify", photos.of(1), photos.of(2))
    assert r.code == 0 and r.err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_on_stderr_and_json_stays_pure(
    cli: Run, photos: Photos, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    r = cli("enroll", "--folders", photos.people, "--json")
    assert r.code == 0
    assert [json.loads(line)["person"] for line in r.out.splitlines()] == ["p1"] * 3 + ["p2"] * 3
    drawn = terminal.getvalue()
    assert "enrolling" in drawn and "6/6" in drawn and "\x1b[" in drawn  # a rich bar
    assert "6 photos of 2 people" in drawn  # the summary, after the bar


def test_progress_lines_every_few_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    out = output.Output(verbose=True)
    with out.progress("embedding", total=4, unit="photos") as progress:
        progress.update(1, 4)  # too soon after the start: no line
        progress._last_line -= output.Progress.LINE_INTERVAL_S
        progress.update(2, 4)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "embedding: 2/4 photos (50%)"
    assert lines[1].startswith("embedding: 2/4 photos (50%) in ") and len(lines) == 2


# -- words --------------------------------------------------------------------------------


def test_counts_are_pluralised(cli: Run, photos: Photos, gallery_path: Path) -> None:
    cli("enroll", "Ann", photos.of(1))
    r = cli("people", "list")
    assert r.out.split() == ["#1", "Ann", "1", "template"]
    assert r.err == f"1 person in {gallery_path}\n"
    assert "1 person, 1 template, model fake-v1" in cli("stats").out
    r = cli("index", "rebuild", "--backend", "exact")
    assert r.out.startswith("index rebuilt: 1 template (exact)")
    r = cli("people", "remove", "Ann", "--yes")
    assert r.out == "deleted Ann (#1) and 1 template\n"


def test_reasons_in_words() -> None:
    assert output.reason_text("no_face") == "no face found"
    assert output.reason_text("blurry") == "face blurry"
    assert output.reason_text("ignored_faces:1") == "1 background face left out"
    assert output.reason_text("ignored_faces:2") == "2 background faces left out"
    assert output.reason_text("matches_other_person:4") == "also matches person #4"
    assert output.reason_text("some_new_code") == "some new code"  # never a bare code
    assert all("_" not in words for words in output.REASONS.values())


def test_boxes_are_whole_pixels_in_every_command(cli: Run, photos: Photos) -> None:
    cli("enroll", "Ann", photos.of(1))
    detected = cli("detect", photos.of(1)).out.splitlines()[1]
    identified = cli("identify", photos.of(1)).out.splitlines()[1]
    box = detected.split(" box ")[1].split(" ")[0]
    assert box.startswith("(") and "." not in box
    assert identified.endswith(f"  box {box}")  # the same face, the same box text
    json_boxes = [
        cli("detect", photos.of(1), "--json").json["faces"][0]["bbox"],
        cli("identify", photos.of(1), "--json").json["faces"][0]["bbox"],
    ]
    assert json_boxes[0] == json_boxes[1]


def test_a_failed_photo_is_named_once(cli: Run, photos: Photos) -> None:
    r = cli("detect", photos.broken, photos.of(1))
    (line,) = [x for x in r.err.splitlines() if "error" in x]
    assert line.startswith(f"{photos.broken}: error: ")
    assert line.count(str(photos.broken)) == 1


def _with_limits(photos: Photos, capsys: pytest.CaptureFixture[str], **limits: int) -> Result:
    settings = dataclasses.replace(FAKE_SETTINGS, runtime=RuntimeSettings(**limits))
    code = main(
        ["detect", str(photos.of(1)), "--json"],
        context_factory=lambda args: CliContext(args, settings=settings),
    )
    out, err = capsys.readouterr()
    return Result(code, out, err)


def test_size_limits_are_said_in_units(photos: Photos, capsys: pytest.CaptureFixture[str]) -> None:
    size = photos.of(1).stat().st_size  # a few KB
    r = _with_limits(photos, capsys, max_image_bytes=2048)
    assert r.code == 3 and r.json["error"]["code"] == "image_too_large"
    said = f"{size / 1024:.1f} KB is over the 2 KB limit"
    assert r.err == f"{photos.of(1)}: error: {said}\n"  # the photo named once
    r = _with_limits(photos, capsys, max_image_pixels=100_000)
    assert (
        r.code == 3 and "640x480 pixels (0.3 megapixels) is over the 0.1 megapixel limit" in r.err
    )


def test_eval_recommends_only_what_it_measured() -> None:
    def verification(n_impostor: int, target_fmr: float) -> Any:
        return SimpleNamespace(
            auc=1.0,
            eer=0.0,
            n_genuine=3,
            n_impostor=n_impostor,
            tar_at_far=(),
            threshold=0.5,
            fmr=0.0,
            fnmr=0.0,
            target_fmr=target_fmr,
            recommended_threshold=0.61,
        )

    def text(v: Any) -> str:
        return output.eval_text(SimpleNamespace(verification=v, groups=None))

    few = text(verification(n_impostor=3, target_fmr=1e-3))
    assert "recommended threshold" not in few and "0.61" not in few
    assert "no threshold recommended for FMR 0.001: it needs at least 1000 impostor " in few
    enough = text(verification(n_impostor=1000, target_fmr=1e-3))
    assert "recommended threshold for FMR 0.001: 0.6100" in enough

    def identification(resolved: bool) -> Any:
        target = SimpleNamespace(
            target_fpir=0.01, fpir=0.0, fnir=0.25, threshold=0.73, resolved=resolved
        )
        at = SimpleNamespace(fpir=0.0, fnir=0.25)
        ident = SimpleNamespace(
            rule="mean-top2", rank1=1.0, n_mated=4, n_nonmated=20, at_threshold=at,
            at_target=target,
        )  # fmt: skip
        return output.eval_text(
            SimpleNamespace(verification=None, identification=ident, groups=None)
        )

    few = identification(resolved=False)
    assert "0.73" not in few
    assert (
        "FNIR at FPIR 0.01: not measured, no threshold recommended (it needs at least 100 " in few
    )
    assert "FNIR at FPIR 0.01: 0.2500 (threshold 0.7300)" in identification(resolved=True)


# -- watch: a timeline --------------------------------------------------------------------


def _event(kind: str, track: int, first: float, last: float) -> Any:
    return SimpleNamespace(
        event=kind,
        track_id=track,
        person=None,
        decision="unknown",
        similarity=None,
        first_seen=first,
        last_seen=last,
    )


def test_watch_lines_are_in_time_order(capsys: pytest.CaptureFixture[str]) -> None:
    sink = output.HumanEventSink(output.Output(), wall=False, delay_s=3.0)
    sink.advance(4.0)
    sink.emit(_event("left", 1, 0.5, 3.0))  # reported 1 s after it was last seen
    sink.advance(4.5)
    sink.emit(_event("appeared", 2, 2.5, 4.5))  # announced 2 s after it appeared
    assert capsys.readouterr().out == ""  # an earlier event may still come
    sink.advance(5.6)
    assert capsys.readouterr().out == "[00:02.500] appeared   #2 unknown\n"
    sink.emit(_event("left", 2, 2.5, 9.0))
    sink.close()
    assert capsys.readouterr().out.splitlines() == [
        "[00:03.000] left       #1 unknown",
        "[00:09.000] left       #2 unknown",
    ]


# -- the command line itself --------------------------------------------------------------


def test_enrol_is_enroll_and_typos_get_a_suggestion(cli: Run, photos: Photos) -> None:
    r = cli("enrol", "Ann", photos.of(1), "--json")
    assert r.code == 0 and r.json["person"]["name"] == "Ann"
    r = cli("indentify", photos.of(1))
    assert r.code == 2 and "invalid choice: 'indentify' (did you mean 'identify'?)" in r.err
    r = cli("eval", "galery", "x")
    assert r.code == 2 and "did you mean 'gallery'?" in r.err
    r = cli("zzz")
    assert r.code == 2 and "did you mean" not in r.err and "'identify'" in r.err


def test_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for code, meaning in MEANINGS:
        assert f"{code:>3}  {meaning.split()[0]}" in text, code
    assert "  9  storage error" in text and " 10  conflict" in text


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found, todo = [parser], [parser]
    while todo:
        for action in todo.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in {id(c): c for c in action.choices.values()}.values():
                    found.append(child)
                    todo.append(child)
    return found


def test_every_option_and_command_has_help() -> None:
    missing = []
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [
                    f"{parser.prog} {c.dest}" for c in action._choices_actions if not c.help
                ]
                continue
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_verbose_before_the_command_is_kept() -> None:
    args = build_parser().parse_args(["-v", "people", "list"])
    assert args.verbose is True
    assert build_parser().parse_args(["people", "list", "-v"]).verbose is True
    assert build_parser().parse_args(["people", "list"]).verbose is False
