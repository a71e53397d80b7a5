"""Values the gallery stores about people, checked before anything is written.

Names (no empty, control-character or id-like names), external ids, metadata (a bounded
JSON object that reads back for every later listing) and LIKE patterns for name search.
Only :mod:`faceindex.gallery` uses this module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from faceindex.errors import InvalidInputError

_ID_REFERENCE = re.compile(r"#\d+")


def validate_name(name: str) -> str:
    clean = name.strip()
    if not clean:
        raise InvalidInputError("a person's name cannot be empty")
    if len(clean) > 200:
        raise InvalidInputError("a person's name is limited to 200 characters")
    if any(ord(c) < 32 for c in clean):
        raise InvalidInputError("a person's name cannot contain control characters")
    if not _is_unicode(clean):
        raise InvalidInputError("a person's name must be valid Unicode (no lone surrogates)")
    if _ID_REFERENCE.fullmatch(clean):
        # "#12" is how people are addressed by id (CLI, person(ref)); a name spelled like
        # that would shadow or be shadowed by the person with that id.
        raise InvalidInputError(f"a person's name cannot look like an id reference ({clean!r})")
    return clean


def validate_external_id(external_id: str | None) -> str | None:
    if external_id is not None and not _is_unicode(external_id):
        raise InvalidInputError("an external id must be valid Unicode (no lone surrogates)")
    return external_id


def storable(text: str | None) -> str | None:
    """``text`` with lone surrogates (an undecodable file name) written as ``\\udcXX``."""
    if text is None or _is_unicode(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_unicode(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (no lone surrogate, as JSON ``\\ud800`` can give)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def like_pattern(text: str) -> str:
    """A LIKE pattern matching names that contain ``text`` literally (ESCAPE '\\')."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


#: Limits on a person's metadata, checked before anything is written: what is stored must
#: read back for every later listing of people.
METADATA_MAX_DEPTH = 5
METADATA_MAX_KEYS = 64
METADATA_MAX_KEY_CHARS = 100
METADATA_MAX_BYTES = 16 * 1024


def json_object(metadata: Mapping[str, Any] | None) -> str:
    """``metadata`` as stored JSON, or :class:`InvalidInputError` saying what is wrong.

    A JSON object nested at most :data:`METADATA_MAX_DEPTH` deep, with at most
    :data:`METADATA_MAX_KEYS` string keys per object of at most
    :data:`METADATA_MAX_KEY_CHARS` characters, finite numbers, valid Unicode strings,
    and at most :data:`METADATA_MAX_BYTES` bytes serialised.
    """
    if metadata is None:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise InvalidInputError("metadata must be a JSON object")
    _check_json(metadata, "metadata", 1)
    try:
        text = json.dumps(dict(metadata), ensure_ascii=False, allow_nan=False)
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidInputError(f"metadata is not JSON-serialisable: {exc}") from exc
    if size > METADATA_MAX_BYTES:
        raise InvalidInputError(
            f"metadata is {size} bytes as JSON; the limit is {METADATA_MAX_BYTES}"
        )
    return text


def _check_json(value: Any, where: str, depth: int) -> None:
    if isinstance(value, Mapping):
        if depth > METADATA_MAX_DEPTH:
            raise InvalidInputError(
                f"metadata is nested deeper than {METADATA_MAX_DEPTH} levels (at {where})"
            )
        if len(value) > METADATA_MAX_KEYS:
            raise InvalidInputError(
                f"{where} has {len(value)} keys; the limit is {METADATA_MAX_KEYS} per object"
            )
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"metadata keys must be strings ({where})")
            if len(key) > METADATA_MAX_KEY_CHARS:
                raise InvalidInputError(
                    f"a key of {where} has {len(key)} characters; the limit is "
                    f"{METADATA_MAX_KEY_CHARS}"
                )
            if not _is_unicode(key):
                raise InvalidInputError(f"a key of {where} is not valid Unicode")
            _check_json(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        if depth > METADATA_MAX_DEPTH:
            raise InvalidInputError(
                f"metadata is nested deeper than {METADATA_MAX_DEPTH} levels (at {where})"
            )
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, str):
        if not _is_unicode(value):
            raise InvalidInputError(f"{where} is not valid Unicode (a lone surrogate)")
    elif value is None or isinstance(value, int):  # bool is an int
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} is not a finite number")
    else:
        raise InvalidInputError(f"{where} is a {type(value).__name__}, not a JSON value")
