"""The CLI's skeleton: parser, dispatch, error mapping, context injection, import hygiene."""

from __future__ import annotations

import argparse
import ast
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import FAKE_SETTINGS, Photos, Run

from faceindex import errors
from faceindex.cli import commands
from faceindex.cli.context import CliContext, apply_args
from faceindex.cli.main import build_parser, main
from faceindex.config import Settings

CLI_DIR = Path(__file__).resolve().parents[3] / "src" / "faceindex" / "cli"


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Any]:
    """(command words, parser) of every runnable command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    found = []
    for name, child in subs[0].choices.items():
        found += leaves(child, (*path, name))
    return found


@pytest.mark.slow  # about a second: the fast tier stays fast
def test_every_command_has_a_handler_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    found = leaves(build_parser())
    names = {" ".join(words) for words, _ in found}
    # at least these (commands added since are checked by the loop below too)
    assert {
        "detect", "verify", "models", "enroll", "enrol", "identify", "people list", "people show",
        "people rename", "people remove", "index rebuild", "reembed", "eval pairs",
        "eval gallery", "audit", "keys create", "keys list", "keys revoke", "keys generate",
        "keys status", "keys rotate", "encryption-key generate", "encryption-key status",
        "encryption-key rotate", "serve", "watch", "anonymize", "stats", "calibrate",
        "check",
    } <= names  # fmt: skip
    for words, parser in found:
        assert callable(parser.get_default("handler")), words
        assert main([*words, "--help"]) == 0
        assert f"usage: faceindex {' '.join(words)}" in capsys.readouterr().out
    assert main(["--help"]) == 0 and "encryption-key" in capsys.readouterr().out


def test_usage_errors_exit_2(cli: Run, photos: Photos) -> None:
    assert cli().code == 2
    assert cli("frobnicate").code == 2
    assert cli("detect").code == 2
    assert cli("keys").code == 2
    assert cli("people", "show").code == 2
    r = cli("verify", photos.of(1))
    assert (
        r.code == 2
        and r.err == "faceindex: error: verify needs two photos A B (or --pairs PAIRS.csv)\n"
    )
    assert cli("verify", "a", "b", "--pairs", "p.csv").code == 2
    assert cli("enroll", "Someone").code == 2
    assert cli("enroll", "A", photos.of(1), "--folders", photos.people).code == 2


class Failing(CliContext):
    """A context whose pipeline raises: stands for any failure inside a handler."""

    closed = 0

    def __init__(self, args: argparse.Namespace, exc: BaseException) -> None:
        super().__init__(args, settings=FAKE_SETTINGS)
        self.exc = exc

    @property
    def pipeline(self) -> Any:
        raise self.exc

    def close(self) -> None:
        Failing.closed += 1
        super().close()


@pytest.mark.parametrize(
    ("exc", "code", "err_code"),
    [
        (errors.InvalidInputError("bad"), 3, "invalid_input"),
        (errors.ImageDecodeError("bad"), 3, "image_decode_error"),
        (errors.NoFaceError("none"), 4, "no_face"),
        (errors.MultipleFacesError("many"), 4, None),
        (errors.ModelUnavailableError("gone"), 5, None),
        (errors.NotFoundError("gone"), 6, "not_found"),
        (errors.ConfigError("bad"), 7, None),
        (errors.StorageError("bad"), 9, None),
        (errors.ConflictError("bad"), 10, None),
        (errors.EmbeddingModelMismatchError("bad"), 10, None),
    ],
)
def test_errors_map_to_exit_codes(
    capsys: pytest.CaptureFixture[str],
    photos: Photos,
    exc: errors.FaceIndexError,
    code: int,
    err_code: str | None,
) -> None:
    before = Failing.closed
    argv = ["verify", str(photos.of(1)), str(photos.of(2)), "--json"]
    assert main(argv, context_factory=lambda args: Failing(args, exc)) == code
    out, err = capsys.readouterr()
    body = __import__("json").loads(out)["error"]
    assert body == {"code": exc.code, "message": exc.message, "details": {}}
    assert err_code is None or body["code"] == err_code
    assert err == f"faceindex: error: {exc.message}\n"
    assert Failing.closed == before + 1  # closed on the error path too


def test_interrupt_broken_pipe_and_bugs(capsys: pytest.CaptureFixture[str], photos: Photos) -> None:
    argv = ["verify", str(photos.of(1)), str(photos.of(2))]

    def run(exc: BaseException) -> int:
        return main(argv, context_factory=lambda args: Failing(args, exc))

    assert run(KeyboardInterrupt()) == 130
    assert run(BrokenPipeError()) == 0
    assert run(RuntimeError("boom")) == 70
    out, err = capsys.readouterr()
    assert out == "" and "faceindex: internal error (run with -v for details)" in err


class Recording(CliContext):
    def close(self) -> None:
        self.gallery_was_open = self._gallery is not None
        super().close()
        self.closed = True


def test_context_factory_gets_the_arguments_and_is_closed(photos: Photos, tmp_path: Path) -> None:
    seen: list[Recording] = []

    def factory(args: argparse.Namespace) -> CliContext:
        seen.append(Recording(args, settings=FAKE_SETTINGS))
        return seen[-1]

    assert main(["detect", str(photos.two), "--detector", "fake"], context_factory=factory) == 0
    assert seen[0].args.images == [str(photos.two)]
    assert seen[0].settings.detection.detector == "fake"
    assert seen[0].closed and not seen[0].gallery_was_open  # detect opens no gallery
    gallery = tmp_path / "g.db"
    assert main(["people", "list", "--gallery", str(gallery)], context_factory=factory) == 6
    assert seen[1].closed and not seen[1].gallery_was_open and not gallery.exists()
    argv = ["enroll", "Ann", str(photos.of(1)), "--gallery", str(gallery)]
    assert main(argv, context_factory=factory) == 0
    assert seen[2].closed and seen[2].gallery_was_open and gallery.is_file()


def test_injected_pipeline_is_used(photos: Photos, capsys: pytest.CaptureFixture[str]) -> None:
    from faceindex.pipeline import Pipeline

    pipeline = Pipeline.from_settings(FAKE_SETTINGS)
    calls: list[str] = []
    real = pipeline.detect
    pipeline.detect = lambda source: calls.append(str(source)) or real(source)  # type: ignore[method-assign]
    code = main(
        ["detect", str(photos.of(1))],
        context_factory=lambda args: CliContext(args, pipeline=pipeline),
    )
    assert code == 0 and calls == [str(photos.of(1))]


def test_flags_apply_on_top_of_the_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        shlex.split(
            "enroll A x.png --detector fake --min-face 30 --embedder sface --threshold 0.5 "
            "--flip --gallery ~/g.db --key-file k --keep-photos"
        )
    )
    base = Settings.from_env({"FACEINDEX_GALLERY": "/env.db", "FACEINDEX_KEY": "abc"})
    s = apply_args(base, args)
    assert (s.detection.detector, s.detection.min_face_px) == ("fake", 30)
    assert (s.embedding.embedder, s.embedding.threshold, s.embedding.flip) == ("sface", 0.5, True)
    assert s.gallery.path == str(Path("~/g.db").expanduser()) and s.gallery.keep_photos
    assert s.privacy.key_file == "k" and s.privacy.key == "abc"
    # no flags: the environment's values stand
    bare = build_parser().parse_args(["people", "list"])
    assert apply_args(base, bare) == base
    ctx = CliContext(bare, environ={"FACEINDEX_GALLERY": str(tmp_path / "env.db")})
    assert ctx.gallery_path == tmp_path / "env.db" and not ctx.gallery_given
    assert CliContext(args).gallery_given


def test_environment_reaches_the_command(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    photos: Photos,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FACEINDEX_GALLERY", str(tmp_path / "env.db"))
    monkeypatch.setenv("FACEINDEX_DETECTION__DETECTOR", "fake")
    monkeypatch.setenv("FACEINDEX_EMBEDDING__EMBEDDER", "fake")
    assert main(["enroll", "Ann", str(photos.of(1))]) == 0
    assert (tmp_path / "env.db").is_file()
    monkeypatch.setenv("FACEINDEX_DETECTION__DETECTR", "fake")
    capsys.readouterr()
    assert main(["people", "list"]) == 7  # a misspelt variable is a config error
    assert "FACEINDEX_DETECTION__DETECTR" in capsys.readouterr().err


def test_console_script_help_imports_no_library() -> None:
    code = (
        "import sys, faceindex.cli.main as m; m.build_parser(); "
        "heavy = [k for k in sys.modules if k.startswith(('faceindex.gallery', "
        "'faceindex.pipeline', 'faceindex.config', 'faceindex.api', 'numpy', 'onnx', 'cv2', "
        "'PIL', 'rich'))]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_command_modules_import_no_main_and_no_sibling() -> None:
    for name in commands.MODULES:
        tree = ast.parse((CLI_DIR / "commands" / f"{name}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                if node.module == "faceindex.cli.commands":
                    imported |= {f"faceindex.cli.commands.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        assert "faceindex.cli.main" not in imported, name
        assert not any(m.startswith("faceindex.cli.commands") for m in imported), name
        assert not any(m.startswith("faceindex.gallery.store") for m in imported), name
    for path in CLI_DIR.rglob("*.py"):  # the gallery's store is its own business
        assert "gallery.store" not in path.read_text(), path
