"""Typed settings, built only at the edges (CLI entry, app factory) and passed down.

Library functions take explicit arguments; only :func:`Settings.from_env` reads the
environment (prefix ``FACEINDEX_``), and bad values fail there, at start-up.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from faceindex.errors import ConfigError


def _check_similarity(name: str, value: float | None) -> None:
    """A cosine-similarity threshold: ``None`` or a finite number in [-1, 1]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}", setting=name)
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ConfigError(
            f"{name} must be a cosine similarity from -1 to 1, got {value!r}", setting=name
        )


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    #: Registered detector name (``yunet``, ``dlib-hog``, ``dlib-cnn``).
    detector: str = "yunet"
    #: Faces whose shorter box side is below this many pixels are dropped.
    min_face_px: int = 20
    #: Detector confidence threshold (detector-specific scale; ``None`` = detector default).
    score_threshold: float | None = None
    #: When no face is found in a small, square image (an aligned face crop), use the
    #: whole image as the face instead of answering "no face".
    crop_fallback: bool = True


@dataclass(frozen=True, slots=True)
class EmbeddingSettings:
    #: Registered embedder name (``sface``, ``dlib-resnet``, ``fusion``).
    embedder: str = "fusion"
    #: Override of the embedder's calibrated match threshold (cosine similarity).
    threshold: float | None = None
    #: Average each face's embedding with its mirror image's. Measured on glint6 (see
    #: benchmarks/calibrate.py): EER 0.0160 -> 0.0150 for fusion, at twice the embedding
    #: cost, so it is off by default. The calibrated thresholds hold for both.
    flip: bool = False
    #: Embed soft and dark faces sharpened or denoised too and keep the embedding with the
    #: larger SFace norm (faceindex.quality.restore; docs/robustness.md, "Restoration").
    #: Costs a second embedding for those faces only.
    restoration: bool = True
    #: Align each face from landmarks averaged over six more detections on its region
    #: (three sizes, each mirrored) (faceindex.detection.refine; docs/robustness.md,
    #: "Landmark refinement"). Costs those detections for every face embedded.
    landmark_refinement: bool = True

    def __post_init__(self) -> None:
        _check_similarity("embedding threshold", self.threshold)


@dataclass(frozen=True, slots=True)
class GallerySettings:
    #: The gallery file, or a ``postgresql://user@host:port/db`` URL (``FACEINDEX_GALLERY``);
    #: ``None`` = gallery.db in the user data folder.
    path: str | None = None
    #: Store each enrolled photo too (needed to re-embed the gallery with another model).
    keep_photos: bool = False

    def __repr__(self) -> str:  # a URL's password never reaches a log or a traceback
        from faceindex.pg import is_url, redact

        path = redact(self.path) if is_url(self.path) and self.path else self.path
        return f"GallerySettings(path={path!r}, keep_photos={self.keep_photos!r})"


@dataclass(frozen=True, slots=True)
class IndexSettings:
    #: ``auto`` (exact below ``ann_from`` templates, else ``pq-rerank``), ``exact``,
    #: ``pq-rerank`` or ``hnsw``.
    backend: str = "auto"
    #: Galleries with at least this many templates are searched approximately under ``auto``:
    #: exact search answers in ~1 ms up to ~100k templates, and past that the fast-scan ANN
    #: (1.9 ms at 1M, recall@10 0.99; benchmarks/search.py) wins.
    ann_from: int = 200_000
    #: A PostgreSQL gallery without a key is searched through pgvector's HNSW index from this
    #: many templates: the database's exact scan costs ~5 us a vector (56 ms at 10k, 670 ms
    #: at 200k), the HNSW search ~10-20 ms with the same top person (benchmarks/scale.py).
    pg_hnsw_from: int = 10_000


@dataclass(frozen=True, slots=True)
class SearchSettings:
    #: A fixed open-set identification threshold; ``None`` = set for the gallery's size
    #: from the embedder's calibrated impostor tail, to hold ``target_fpir``.
    threshold: float | None = None
    #: The share of strangers the gallery may name (false positive identification rate).
    target_fpir: float = 1e-2
    #: Least lead of the best person over the runner-up to name them (0 = none).
    margin: float = 0.0
    #: How a person's template scores are aggregated: ``mean-top2`` or ``max``.
    rule: str = "mean-top2"
    #: Template hits fetched from the index per probe before grouping by person.
    top_k: int = 50

    def __post_init__(self) -> None:
        _check_similarity("search threshold", self.threshold)
        if not (isinstance(self.margin, int | float) and math.isfinite(self.margin)) or not (
            0.0 <= self.margin <= 2.0
        ):
            raise ConfigError(f"search margin must be from 0 to 2, got {self.margin!r}")
        if self.rule not in ("mean-top2", "max"):
            raise ConfigError(f"unknown aggregation rule {self.rule!r}; valid: mean-top2, max")
        if self.top_k < 1:
            raise ConfigError("search top_k must be at least 1")
        if not 0.0 < self.target_fpir < 1.0:
            raise ConfigError("search target_fpir must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    #: Template encryption key as base64 or hex text (``FACEINDEX_KEY``); never logged.
    key: str | None = field(default=None, repr=False)
    #: A file holding the key (raw 32 bytes, or base64/hex text); wins over ``key``.
    key_file: str | None = None


#: The one default pixel limit (CLI, library and server): 50 megapixels holds the photos of
#: today's phones (48-50 MP sensors) and cameras up to 8K video frames, while a
#: decompression bomb is refused from its header.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    #: Threads per ONNX Runtime session; ``None`` = all cores.
    threads: int | None = None
    #: Where derived model files are cached (``FACEINDEX_CACHE_DIR``); ``None`` = the
    #: user cache folder.
    cache_dir: str | None = None
    #: Largest accepted image, in pixels (decompression-bomb guard); the REST API has the
    #: same default, so a photo the CLI reads is one the server reads.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    #: Largest accepted image file, in bytes.
    max_image_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    gallery: GallerySettings = field(default_factory=GallerySettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``FACEINDEX_<SECTION>__<FIELD>`` variables.

        For example ``FACEINDEX_DETECTION__DETECTOR=dlib-hog``. Unknown keys under the
        prefix are an error, so a typo never silently does nothing. The documented short
        names ``FACEINDEX_GALLERY``, ``FACEINDEX_KEY`` and ``FACEINDEX_CACHE_DIR`` stand for
        ``gallery.path``, ``privacy.key`` and ``runtime.cache_dir``. This is the only place
        the library reads the environment.
        """
        env = os.environ if environ is None else environ
        sections: dict[str, dict[str, object]] = {}
        for key, (section, name) in _SHORT_NAMES.items():
            value = env.get(key, "").strip()
            if value:
                sections.setdefault(section, {})[name] = value
        prefix = "FACEINDEX_"
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key, raw in env.items():
            if not key.startswith(prefix) or "__" not in key:
                continue
            section_name, _, field_name = key[len(prefix) :].lower().partition("__")
            if section_name not in known:
                raise ConfigError(f"unknown settings section in {key}", key=key)
            section_type = type(getattr(cls(), section_name))
            fields = {f.name: f for f in dataclasses.fields(section_type)}
            if field_name not in fields:
                raise ConfigError(
                    f"unknown setting {key}; valid: "
                    + ", ".join(f"{prefix}{section_name.upper()}__{n.upper()}" for n in fields),
                    key=key,
                )
            sections.setdefault(section_name, {})[field_name] = _parse(
                key, raw, str(fields[field_name].type)
            )
        base = cls()
        try:
            updated = {
                name: dataclasses.replace(getattr(base, name), **values)
                for name, values in sections.items()
            }
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid settings: {exc}") from None
        return dataclasses.replace(base, **updated)


_SHORT_NAMES: dict[str, tuple[str, str]] = {
    "FACEINDEX_GALLERY": ("gallery", "path"),
    "FACEINDEX_KEY": ("privacy", "key"),
    "FACEINDEX_CACHE_DIR": ("runtime", "cache_dir"),
}


def _parse(key: str, raw: str, type_name: str) -> object:
    text = raw.strip()
    if "None" in type_name and text.lower() in ("", "none", "null"):
        return None
    if type_name.startswith("bool"):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}={raw!r} is not a valid boolean", key=key)
    try:
        if type_name.startswith("int"):
            return int(text)
        if type_name.startswith("float"):
            return float(text)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a valid {type_name}", key=key) from None
    return text
