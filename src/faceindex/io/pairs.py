"""The pairs CSV of ``faceindex verify --pairs`` and ``faceindex eval pairs``.

Format: UTF-8 (a byte-order mark is allowed), a header row naming the columns ``a`` and
``b`` (photo paths) and, for evaluation, ``same`` (``1``/``0``, ``true``/``false``,
``yes``/``no``, ``y``/``n``); header names are trimmed and case-insensitive, other columns
are ignored, fully blank lines are skipped. Paths are relative to the root: ``--root DIR``
when given, else the folder holding the CSV.

``--root`` confines: when it is given, every path must name a file inside it, so an
absolute path or one that climbs out of it (``../../etc/passwd``, or a symbolic link
inside it that points out) is refused. That lets a CSV from someone else be run against
one folder of photos and nothing else. Without ``--root`` the CSV is taken to be the
user's own, like the paths of ``verify A B``: its paths are used as written (relative to
its folder; an absolute path stays absolute; ``..`` is followed).

Every problem with the file itself is an :class:`~faceindex.errors.InvalidInputError`
naming the file and, for a row, its line (a missing file is a ``NotFoundError``). The
photos are not opened here: a missing or unreadable photo is the business of whoever
embeds it, pair by pair.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from faceindex.errors import InvalidInputError, NotFoundError

_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"0", "false", "no", "n"})


@dataclass(frozen=True, slots=True)
class Pair:
    """One row: the two paths as written (trimmed), its line in the file, and the label
    (``None`` when the file was read without labels)."""

    line: int
    a: str
    b: str
    same: bool | None = None


@dataclass(frozen=True, slots=True)
class PairsFile:
    path: Path
    #: The folder the paths are relative to.
    root: Path
    pairs: tuple[Pair, ...]
    #: Whether every path must stay inside ``root`` (``--root`` was given).
    confined: bool = False

    def resolve(self, name: str) -> Path:
        """Where the photo named ``name`` in the CSV is (``root / name``).

        When :attr:`confined`, a name that is absolute or leads outside ``root`` (after
        ``..`` and symbolic links) is an :class:`InvalidInputError`; nothing is opened.
        """
        path = self.root / name
        if self.confined:
            if Path(name).is_absolute() or Path(name).drive:
                raise InvalidInputError(
                    f"{name}: absolute paths are refused with --root (give it relative "
                    f"to {self.root})",
                    path=name,
                )
            if not path.resolve().is_relative_to(self.root.resolve()):
                raise InvalidInputError(
                    f"{name}: leads outside the root folder {self.root}", path=name
                )
        return path


def read_pairs(
    csv_path: str | Path, *, root: str | Path | None = None, labelled: bool = False
) -> PairsFile:
    """Read a pairs CSV.

    ``labelled=False`` (``verify --pairs``): only ``a`` and ``b`` are required and rows are
    returned as written, empty paths and paths outside ``root`` included, so that the
    caller can report such a row as a failed pair (:meth:`PairsFile.resolve` refuses the
    path) and carry on. ``labelled=True`` (evaluation): ``same`` is required too and
    every row must have both paths, inside ``root`` when given, and a valid label, else the
    whole file is refused, since a measurement on part of a file would be silently wrong.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file", path=str(path))
    base = Path(root) if root is not None else path.parent
    required = ("a", "b", "same") if labelled else ("a", "b")
    pairs: list[Pair] = []
    reader: csv.DictReader[str] | None = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip().lower() for c in (reader.fieldnames or [])]
            if not set(required) <= set(fields):
                names = " and ".join(
                    [", ".join(f"'{c}'" for c in required[:-1]), f"'{required[-1]}'"]
                )
                raise InvalidInputError(
                    f"{path}: header must name columns {names} (got {fields})", path=str(path)
                )
            reader.fieldnames = fields
            for row in reader:
                line = reader.line_num
                a, b = (row.get("a") or "").strip(), (row.get("b") or "").strip()
                same: bool | None = None
                if labelled:
                    if not a or not b:
                        raise InvalidInputError(
                            f"{path} line {line}: empty path", path=str(path), line=line
                        )
                    same = _label(path, line, row.get("same"))
                pairs.append(Pair(line, a, b, same))
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path}: not a UTF-8 CSV file", path=str(path)) from exc
    except csv.Error as exc:
        # DictReader.line_num lags on errors; its inner reader has counted the bad line.
        line = reader.reader.line_num if reader is not None else 1
        raise InvalidInputError(
            f"{path} line {line}: malformed CSV ({exc})", path=str(path), line=line
        ) from exc
    result = PairsFile(path=path, root=base, pairs=tuple(pairs), confined=root is not None)
    if labelled:  # a measurement on part of a file would be wrong: refuse it whole
        for pair in result.pairs:
            for name in (pair.a, pair.b):
                try:
                    result.resolve(name)
                except InvalidInputError as exc:
                    raise InvalidInputError(
                        f"{path} line {pair.line}: {exc.message}", path=str(path), line=pair.line
                    ) from exc
    return result


def _label(path: Path, line: int, raw: str | None) -> bool:
    text = (raw or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInputError(
        f"{path} line {line}: 'same' must be 1 or 0, got {text!r}", path=str(path), line=line
    )
