"""Labelled presentation-attack photos (``labels.csv``: ``path,label,subject`` and any
further condition columns), as the training script and the benchmark read them."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from faceindex.errors import InvalidInputError

LIVE, ATTACK = "live", "attack"


@dataclass(frozen=True, slots=True)
class LabelledPhoto:
    path: Path
    live: bool
    subject: str
    #: Other columns of the row (lighting, session, device...), for cross-condition tests.
    conditions: dict[str, str] = field(default_factory=dict)


def read_labels(data_dir: Path) -> list[LabelledPhoto]:
    """The rows of ``data_dir/labels.csv``, paths made absolute; labels must be
    ``live`` or ``attack``."""
    table = Path(data_dir) / "labels.csv"
    if not table.is_file():
        raise InvalidInputError(f"{table}: no labels.csv (columns path,label,subject)")
    out: list[LabelledPhoto] = []
    with table.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "label", "subject"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidInputError(f"{table}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            label = row["label"].strip().lower()
            if label not in (LIVE, ATTACK):
                raise InvalidInputError(f"{table}:{line}: label must be live or attack")
            extra = {k: v for k, v in row.items() if k not in ("path", "label", "subject")}
            out.append(
                LabelledPhoto(Path(data_dir) / row["path"], label == LIVE, row["subject"], extra)
            )
    return out
