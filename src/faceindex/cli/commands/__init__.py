"""One module per command group; each has ``register(subparsers)``.

``register`` adds the group's parsers and sets ``handler=`` on each, a function
``handler(args, ctx) -> exit code`` taking the parsed arguments and the
:class:`~faceindex.cli.context.CliContext`. Command modules import only argparse and
:mod:`faceindex.cli.options` / ``context`` / ``output`` / ``exit_codes`` at module level
(the library loads inside handlers), never :mod:`faceindex.cli.main` nor each other.
"""

from __future__ import annotations

#: The command modules, in the order their commands are listed by ``faceindex --help``.
MODULES: tuple[str, ...] = (
    "detect",
    "analyze",
    "verify",
    "gallery",
    "library",
    "stats",
    "eval",
    "audit",
    "apikeys",
    "encryption",
    "check",
    "transfer",
    "serve",
    "video",
    "cloak",
    "models",
    "liveness",
)
