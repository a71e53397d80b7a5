from __future__ import annotations

import pytest

from faceindex.config import Settings
from faceindex.detection import DETECTORS
from faceindex.embedding import EMBEDDERS
from faceindex.errors import ConfigError
from faceindex.registry import Registry


def test_settings_from_env_parses_types() -> None:
    s = Settings.from_env(
        {
            "FACEINDEX_DETECTION__DETECTOR": "dlib-hog",
            "FACEINDEX_DETECTION__MIN_FACE_PX": "32",
            "FACEINDEX_EMBEDDING__THRESHOLD": "0.5",
            "FACEINDEX_RUNTIME__THREADS": "none",
            "FACEINDEX_EMBEDDING__FLIP": "true",
            "OTHER": "ignored",
        }
    )
    assert s.detection.detector == "dlib-hog"
    assert s.detection.min_face_px == 32
    assert s.embedding.threshold == 0.5
    assert s.runtime.threads is None
    assert s.embedding.flip is True
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("FACEINDEX_DETECTION__MIN_FACE", "3", "unknown setting"),
        ("FACEINDEX_NOPE__X", "3", "unknown settings section"),
        ("FACEINDEX_DETECTION__MIN_FACE_PX", "big", "not a valid int"),
        ("FACEINDEX_EMBEDDING__FLIP", "maybe", "not a valid bool"),
    ],
)
def test_settings_typos_fail_loudly(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({key: value})


def test_registry_lists_valid_names_on_unknown() -> None:
    with pytest.raises(ConfigError, match="dlib-cnn, dlib-hog, fake, yunet"):
        DETECTORS.get("retina")
    assert EMBEDDERS.names() == ["dlib-resnet", "fake", "fusion", "fusion-v1", "sface"]
    reg: Registry[object] = Registry("thing")
    reg.register("a", "math:pi")
    assert reg.get("a") == pytest.approx(3.14159, abs=1e-5)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", "math:e")
    with pytest.raises(ValueError, match="module:attr"):
        reg.register("b", "math.e")


def test_import_loads_no_model() -> None:
    import subprocess
    import sys

    code = (
        "import sys, faceindex, faceindex.pipeline, faceindex.cli.main;"
        "heavy = [m for m in ('dlib', 'onnxruntime', 'cv2', 'onnx') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_and_server_share_one_pixel_limit() -> None:
    from faceindex.api.settings import ApiSettings
    from faceindex.config import RuntimeSettings

    assert ApiSettings().max_image_pixels == RuntimeSettings().max_image_pixels
