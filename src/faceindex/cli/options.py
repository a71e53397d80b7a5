"""The command-line options several commands share, declared once.

:class:`~faceindex.cli.context.CliContext` is what reads them (``--detector`` ...
``--flip`` into the settings, ``--gallery``/``--key-file`` into the gallery it opens), so a
command that declares them here gets them honoured without any code of its own.
Nothing here imports more than argparse.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

#: The type of ``ArgumentParser.add_subparsers()``'s result (argparse does not name it
#: publicly); every ``register(subparsers)`` of :mod:`faceindex.cli.commands` takes one.
Subparsers = Any


# -- argument types (argparse turns their ArgumentTypeError into a usage error, exit 2) --


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def cosine(text: str) -> float:
    """A cosine-similarity threshold: a finite number in [-1, 1]."""
    value = _finite(text)
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a cosine similarity (a number from -1 to 1)"
        )
    return value


def non_negative(text: str) -> float:
    """A finite number >= 0 (seconds, margins)."""
    value = _finite(text)
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def count(text: str) -> int:
    """An integer >= 0 (``--offset``, ``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


#: ``#`` and digits: always a person's id on the command line.
_ID_REF = re.compile(r"#([0-9]+)")
#: The escape for a person whose name itself looks like an id (``name:#2``).
NAME_PREFIX = "name:"
PERSON_HELP = f"#ID (always an id), a name, or {NAME_PREFIX}NAME (a name taken literally)"


def person_ref(text: str) -> int | str:
    """A person reference of the command line: ``#2`` is the id 2, always (even if some
    person is named "#2"); ``name:#2`` is the name "#2"; anything else is a name."""
    ref = text.strip()
    match = _ID_REF.fullmatch(ref)
    if match:
        return int(match.group(1))
    if ref.startswith(NAME_PREFIX):
        return ref[len(NAME_PREFIX) :]
    return ref


def looks_like_id(name: str) -> bool:
    """Whether ``name`` reads as an id reference (``#`` and digits)."""
    return _ID_REF.fullmatch(name.strip()) is not None


def add_json_option(p: argparse.ArgumentParser, help: str = "JSON on stdout") -> None:
    p.add_argument("--json", action="store_true", help=help)


def add_model_options(p: argparse.ArgumentParser, *, embedder: bool, json: bool = True) -> None:
    """``--detector``, ``--min-face`` and, with ``embedder``, ``--embedder``,
    ``--threshold`` and ``--flip``; ``--json`` (JSON lines) unless ``json`` is False."""
    p.add_argument("--detector", help="detector: yunet (default), dlib-hog, dlib-cnn")
    p.add_argument("--min-face", type=int, metavar="PX", help="smallest face, in pixels")
    if embedder:
        p.add_argument("--embedder", help="embedder: fusion (default), sface, dlib-resnet")
        p.add_argument(
            "--threshold", type=cosine, help="match threshold (cosine similarity, -1 to 1)"
        )
        p.add_argument(
            "--flip",
            action="store_true",
            help="also embed the mirrored face and average (slower, slightly more accurate)",
        )
    if json:
        add_json_option(p, "JSON lines on stdout")


def add_gallery_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gallery",
        metavar="PATH",
        help="gallery file or postgresql://user@host:port/db URL (default: $FACEINDEX_GALLERY, "
        "else gallery.db in the user data folder)",
    )
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="template encryption key (default: $FACEINDEX_KEY if set)",
    )


def action_subparsers(
    subparsers: Subparsers, name: str, *, dest: str, metavar: str = "ACTION", **parser_kwargs: Any
) -> Subparsers:
    """The sub-commands of the command ``name`` (``keys``, ``people`` ...), creating the
    command on first use: two modules may each add actions to one command (``keys``)."""
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, **parser_kwargs)
        return parser.add_subparsers(dest=dest, metavar=metavar, required=True)
    # argparse has no public accessor for a parser's sub-commands; this is the usual way.
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


#: ``keys`` holds the REST API key actions (:mod:`faceindex.cli.commands.apikeys`) and,
#: deprecated, the old spellings of ``encryption-key`` (:mod:`~.commands.encryption`).
KEYS_COMMAND = "keys"
KEYS_HELP = "REST API keys: create, list, revoke"


REQUIRE_LIVE_HELP = (
    "refuse a photo where a face looks like a presentation attack (a printed photo or a "
    "screen): exit 11, error spoof_detected (passive liveness: see faceindex liveness)"
)


def add_require_live(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--require-live", action="store_true", help=REQUIRE_LIVE_HELP)


# -- engines (enroll --folders, scan) ---------------------------------------------------

#: The engines ``--engine`` offers (:data:`faceindex.engines.ENGINES`; named here so that
#: building the parser imports nothing).
ENGINE_CHOICES = ("local", "dask")


def positive(text: str) -> int:
    """An integer >= 1 (``--workers``)."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine``, ``--workers``, ``--address``: where the photos are analysed."""
    p.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        default="local",
        help="where photos are analysed: local (default: in this process) or dask (worker "
        "processes; needs pip install 'faceindex[dask]'). Results are written here, in "
        "order, so the outcome is the same",
    )
    p.add_argument(
        "--workers",
        type=positive,
        metavar="N",
        help="dask: start a local cluster of N worker processes on 127.0.0.1 (default: one "
        "per CPU core); each loads the models once",
    )
    p.add_argument(
        "--address",
        metavar="tcp://HOST:PORT",
        help="dask: use the running Dask scheduler at this address (its workers, on any "
        "machine, must read the photos at the same paths) instead of a local cluster",
    )


def engine_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--engine``/``--workers``/``--address`` together, if anything."""
    engine = getattr(args, "engine", "local")
    workers, address = getattr(args, "workers", None), getattr(args, "address", None)
    if engine != "dask" and (workers is not None or address is not None):
        return "--workers and --address are for --engine dask"
    if workers is not None and address is not None:
        return "give --workers (start a local cluster) or --address (join one), not both"
    return None
