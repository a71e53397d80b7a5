"""Typed settings, built only at the edges (CLI entry, app factory) and passed down.

Library functions take explicit arguments; only :func:`Settings.from_env` reads the
environment (prefix ``FACEINDEX_``), and bad values fail there, at start-up.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from faceindex.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    #: Registered detector name (``yunet``, ``dlib-hog``, ``dlib-cnn``).
    detector: str = "yunet"
    #: Faces whose shorter box side is below this many pixels are dropped.
    min_face_px: int = 20
    #: Detector confidence threshold (detector-specific scale; ``None`` = detector default).
    score_threshold: float | None = None


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


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    #: Threads per ONNX Runtime session; ``None`` = all cores.
    threads: int | None = None
    #: Largest accepted image, in pixels (decompression-bomb guard).
    max_image_pixels: int = 50_000_000
    #: Largest accepted image file, in bytes.
    max_image_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``FACEINDEX_<SECTION>__<FIELD>`` variables.

        For example ``FACEINDEX_DETECTION__DETECTOR=dlib-hog``. Unknown keys under the
        prefix are an error, so a typo never silently does nothing.
        """
        env = os.environ if environ is None else environ
        sections: dict[str, dict[str, object]] = {}
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
        updated = {
            name: dataclasses.replace(getattr(base, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(base, **updated)


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
