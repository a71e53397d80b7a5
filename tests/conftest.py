from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "images"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def obama_path() -> Path:
    return FIXTURES / "obama.jpg"


@pytest.fixture(scope="session")
def obama_rgb() -> np.ndarray:
    from faceindex.io.image import load_image

    return load_image(FIXTURES / "obama.jpg")


@pytest.fixture(scope="session")
def pipeline():  # type: ignore[no-untyped-def]
    """The default pipeline (YuNet + fusion), models loaded once for the whole test run."""
    from faceindex.pipeline import Pipeline

    p = Pipeline.from_settings()
    p.warm_up()
    return p
