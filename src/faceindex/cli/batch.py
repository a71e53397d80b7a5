"""One loop for the commands that work photo by photo (``detect``, ``identify``).

Each photo's result is printed as it comes; a photo that fails is reported and the loop
goes on. Over several photos, progress goes to stderr (:meth:`.Output.progress`). The
exit code is the error's own when the only photo failed, ``8`` (partial failure) when
some of several did, ``0`` when none did. Errors in ``stop_on`` (a wrong key, say, which
fails every photo alike) end the command at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK, PARTIAL_FAILURE, exit_code_for
from faceindex.errors import FaceIndexError

T = TypeVar("T")


def each_photo(
    ctx: CliContext,
    paths: Sequence[str],
    work: Callable[[str], T],
    to_json: Callable[[T], dict[str, Any]],
    to_text: Callable[[str, T], str],
    *,
    stop_on: tuple[type[FaceIndexError], ...] = (),
    description: str = "photos",
) -> int:
    """Run ``work`` on each path and print ``{"path", **to_json(result)}`` or the text."""
    failures, last_code = 0, OK
    progress = ctx.out.progress(description, total=len(paths), unit="photos")
    with progress if len(paths) > 1 else contextlib.nullcontext() as bar:
        for path in paths:
            try:
                result = work(path)
            except stop_on:
                raise
            except FaceIndexError as exc:
                failures += 1
                last_code = exit_code_for(exc)
                ctx.out.item_error(path, exc, path=path)
            else:
                ctx.out.emit(
                    {"path": path, **to_json(result)},
                    lambda: to_text(path, result),  # noqa: B023 (called at once)
                )
            if bar is not None:
                bar.advance()
    if failures == 0:
        return OK
    return last_code if len(paths) == 1 else PARTIAL_FAILURE
