from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "images"

#: A local PostgreSQL for the tests that need one (started only when a test asks for it).
pytest_plugins = ["pg_server"]


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


@pytest.fixture(scope="session")
def fake_pipeline():  # type: ignore[no-untyped-def]
    """The deterministic fake backends (no ONNX): for logic tests that run in milliseconds."""
    from faceindex.pipeline import Pipeline
    from faceindex.testing.fakes import FakeDetector, FakeEmbedder

    return Pipeline(detector=FakeDetector(), embedder=FakeEmbedder())


@pytest.fixture()
def fake_api_client(tmp_path: Path, fake_pipeline):  # type: ignore[no-untyped-def]
    """``make(**ApiSettings options)``: a started TestClient of the REST app on the fake
    backends (gallery ``tmp_path/g.db``, no rate limit unless given); closed afterwards."""
    import warnings

    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

    from faceindex.api.app import create_app
    from faceindex.api.settings import ApiSettings

    clients: list[TestClient] = []

    def make(**options):  # type: ignore[no-untyped-def]
        options.setdefault("gallery", tmp_path / "g.db")
        options.setdefault("rate_limit_per_minute", 0)
        client = TestClient(create_app(ApiSettings(**options), pipeline=fake_pipeline))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture()
def photo_of(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``photo_of(*people, variant=0)``: a synthetic PNG file showing those people's faces."""
    from faceindex.testing.synthetic import synthetic_photo_bytes

    def make(*people: int, variant: int = 0) -> Path:
        path = tmp_path / f"p{'-'.join(map(str, people)) or 'none'}_v{variant}.png"
        path.write_bytes(synthetic_photo_bytes(list(people), variant=variant))
        return path

    return make


_TIERS = ("integration", "browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The integration tier: every test under tests/integration or tests/browser, and
    every test that uses the real models (the ``pipeline`` fixture). ``make test`` runs
    both tiers; ``pytest -m "not integration"`` runs the fast one alone."""
    root = Path(__file__).parent
    for item in items:
        try:
            top = Path(str(item.path)).relative_to(root).parts[0]
        except ValueError:
            continue
        if top in _TIERS or "pipeline" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
