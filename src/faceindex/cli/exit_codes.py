"""The one table from library errors to process exit codes (documented in the README).

| code | meaning |
| ---: | --- |
| 0 | success (``verify``: the faces match) |
| 1 | ``verify A B``: the faces do not match; ``check``: a trace or a pending erasure was found |
| 2 | usage error (bad command line) |
| 3 | invalid input: unreadable, corrupt or too large image, bad CSV |
| 4 | no face found where one was needed |
| 5 | a model is unavailable (package missing or file damaged) |
| 6 | a file or other named thing was not found |
| 7 | bad configuration |
| 8 | some items of a batch failed (their errors are in the output) |
| 9 | storage error |
| 10 | conflict (e.g. embeddings of different models) |
| 11 | a face was judged a spoof (a photo or a screen) where a live person was required |
| 12 | ``verify A B --reject-below Q``: unsure, a face's quality was under Q (no decision) |
| 70 | internal error (a bug: please report it) |
| 130 | interrupted (Ctrl+C) |
"""

from __future__ import annotations

from faceindex import errors

OK = 0
NO_MATCH = 1
USAGE = 2
PARTIAL_FAILURE = 8
UNSURE = 12
INTERNAL = 70

#: Every exit code and what it means, in the words of ``faceindex --help``.
MEANINGS: tuple[tuple[int, str], ...] = (
    (OK, "success (verify: the faces match)"),
    (NO_MATCH, "verify: no match; check: a trace or a pending erasure was found"),
    (USAGE, "usage error (bad command line)"),
    (3, "invalid input: unreadable, corrupt or too large image, bad CSV"),
    (4, "no face found where one was needed"),
    (5, "a model is unavailable (package missing or file damaged)"),
    (
        6,
        "not found: a photo, a person, or the gallery (commands that only read it never create it)",
    ),
    (7, "bad configuration"),
    (PARTIAL_FAILURE, "some items of a batch failed (their errors are in the output)"),
    (9, "storage error (the gallery file cannot be read or written)"),
    (10, "conflict (e.g. embeddings of different models)"),
    (11, "spoof: a face was judged a photo or a screen where a live person was required"),
    (UNSURE, "verify --reject-below: unsure, a face's quality was under the floor"),
    (INTERNAL, "internal error (a bug: please report it)"),
    (130, "interrupted (Ctrl+C)"),
)

_TABLE: tuple[tuple[type[errors.FaceIndexError], int], ...] = (
    (errors.NotFoundError, 6),
    (errors.InvalidInputError, 3),
    (errors.NoFaceError, 4),
    (errors.MultipleFacesError, 4),
    (errors.QualityTooLowError, 4),
    (errors.ModelUnavailableError, 5),
    (errors.ConfigError, 7),
    (errors.StorageError, 9),
    (errors.ConflictError, 10),
    (errors.SpoofDetectedError, 11),
)


def exit_code_for(exc: BaseException) -> int:
    for cls, code in _TABLE:
        if isinstance(exc, cls):
            return code
    if isinstance(exc, errors.FaceIndexError):
        return 3
    return INTERNAL
