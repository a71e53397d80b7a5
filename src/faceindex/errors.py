"""The one exception hierarchy of faceindex.

Every error a user can cause or meet is a :class:`FaceIndexError` with a stable ``code``.
The CLI (exit codes) and the REST API (HTTP status) each map these classes in exactly one
table, so library code never decides how an error is shown.
"""

from __future__ import annotations

from typing import Any


class FaceIndexError(Exception):
    """Base class of every error faceindex raises on purpose."""

    code: str = "faceindex_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInputError(FaceIndexError):
    """The caller gave something faceindex cannot use (bad argument, bad file)."""

    code = "invalid_input"


class ImageDecodeError(InvalidInputError):
    """A file or byte string is not a readable image (corrupt, truncated, not an image)."""

    code = "image_decode_error"


class ImageTooLargeError(InvalidInputError):
    """An image has more pixels or bytes than the configured limit (decompression bombs)."""

    code = "image_too_large"


class VideoSourceError(InvalidInputError):
    """A video source cannot be used (base of the video errors)."""

    code = "video_source_error"


class VideoDecodeError(VideoSourceError):
    """A file is not a video OpenCV can decode: empty, truncated, not a video, odd codec."""

    code = "video_decode_error"


class StreamUnavailableError(VideoSourceError):
    """A device or network stream could not be opened, or was lost and not regained."""

    code = "stream_unavailable"


class NoFaceError(FaceIndexError):
    """No face was found where one was required."""

    code = "no_face"


class FaceTooSmallError(NoFaceError):
    """The detector saw a face, but smaller than its size gate (``min_face_px``): the
    message says both sizes, ``details`` has ``face_px`` and ``min_face_px``."""

    code = "face_too_small"


class SpoofDetectedError(FaceIndexError):
    """A face was judged a presentation attack (a printed photo, a screen) where a live
    person was required (``--require-live``, ``require_liveness``)."""

    code = "spoof_detected"


class MultipleFacesError(FaceIndexError):
    """Several faces were found where exactly one was required."""

    code = "multiple_faces"


class QualityTooLowError(FaceIndexError):
    """A face was found but is unusable (too small, blurry, dark, extreme pose)."""

    code = "quality_too_low"


class NotFoundError(FaceIndexError):
    """A named thing (file, person, model) does not exist."""

    code = "not_found"


class ConflictError(FaceIndexError):
    """The request conflicts with what is stored (duplicates, mixed models)."""

    code = "conflict"


class EmbeddingModelMismatchError(ConflictError):
    """Two embeddings from different models were compared or mixed."""

    code = "embedding_model_mismatch"


class ConfigError(FaceIndexError):
    """Settings are invalid; raised at start-up, never mid-request."""

    code = "config_error"


class ModelUnavailableError(FaceIndexError):
    """A model's package or file is missing or does not match its recorded checksum."""

    code = "model_unavailable"


class StorageError(FaceIndexError):
    """The gallery store failed to read or write."""

    code = "storage_error"
