"""``faceindex scan`` / ``faceindex clusters`` and the library's REST routes on the fake
backends: the JSON contracts, naming through each front end, scopes."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.api.app import create_app  # noqa: E402
from faceindex.api.settings import ApiSettings  # noqa: E402
from faceindex.apikeys import KeyRing  # noqa: E402
from faceindex.cli.context import CliContext  # noqa: E402
from faceindex.cli.main import main  # noqa: E402
from faceindex.config import DetectionSettings, EmbeddingSettings, GallerySettings, Settings  # noqa: E402
from faceindex.gallery import open_gallery  # noqa: E402
from faceindex.library import PhotoLibrary  # noqa: E402
from faceindex.pipeline import Pipeline  # noqa: E402
from faceindex.testing.synthetic import synthetic_photo_bytes  # noqa: E402


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for person in (1, 2):
        for v in range(3):
            path = root / f"p{person}" / f"{v}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(synthetic_photo_bytes([person], variant=v))
    (root / "both.png").write_bytes(synthetic_photo_bytes([1, 2], variant=5))
    (root / "README.txt").write_text("not a photo")
    return root


def run_cli(capsys: pytest.CaptureFixture[str], gallery: Path, *argv: str | Path):  # type: ignore[no-untyped-def]
    settings = Settings(
        detection=DetectionSettings(detector="fake"),
        embedding=EmbeddingSettings(embedder="fake"),
        gallery=GallerySettings(path=str(gallery)),
    )
    code = main([str(a) for a in argv], context_factory=lambda a: CliContext(a, settings=settings))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_scan_list_name_merge_remove(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path
) -> None:
    g = tmp_path / "g.db"
    code, out, err = run_cli(capsys, g, "scan", photos, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["new"], summary["not_images"], summary["faces"]) == (7, 1, 8)
    assert "7 new" in err and "files/s" in err
    code, out, _ = run_cli(capsys, g, "scan", photos, "--json")
    assert json.loads(out)["unchanged"] == 7 and json.loads(out)["new"] == 0
    code, out, _ = run_cli(capsys, g, "clusters", "--json")
    listing = json.loads(out)
    assert [c["size"] for c in listing["clusters"]] == [4, 4] and listing["unclustered"] == []
    first, second = (c["id"] for c in listing["clusters"])
    face = listing["clusters"][0]["faces"][0]
    assert set(face) == {"id", "path", "bbox"} and len(face["bbox"]) == 4
    code, out, _ = run_cli(capsys, g, "clusters", "remove-face", first, face["id"], "--json")
    assert code == 0 and json.loads(out)["now_in"] is None
    code, out, _ = run_cli(capsys, g, "clusters", "merge", first, second, "--json")
    assert json.loads(out)["size"] == 7
    code, out, _ = run_cli(capsys, g, "clusters", "name", first, "Pat", "--json")
    named = json.loads(out)
    assert named["person"]["name"] == "Pat" and named["faces"] == 7
    code, out, _ = run_cli(capsys, g, "clusters")
    assert "1 face in no cluster" in out
    assert run_cli(capsys, g, "clusters", "merge", "1")[0] == 2  # usage
    assert run_cli(capsys, g, "clusters", "name", 999, "X")[0] == 6  # not found


def test_cli_clusters_needs_an_existing_gallery(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, tmp_path / "none.db", "clusters")
    assert code == 6 and "no such gallery" in err
    assert not (tmp_path / "none.db").exists()


@pytest.fixture()
def client(
    tmp_path: Path, fake_pipeline: Pipeline, photos: Path
) -> Iterator[tuple[TestClient, Path]]:
    g = tmp_path / "g.db"
    with open_gallery(g, pipeline=fake_pipeline) as gallery, PhotoLibrary(gallery) as lib:
        lib.scan([photos])
    empty = tmp_path / "static"
    empty.mkdir()
    settings = ApiSettings(gallery=g, rate_limit_per_minute=0, static_dir=empty)
    app = create_app(settings, pipeline=fake_pipeline)
    assert "/v1/clusters" in app.openapi()["paths"]
    with TestClient(app) as c:
        yield c, g


def test_api_clusters_name_merge_and_photo_search(client: tuple[TestClient, Path]) -> None:
    c, g = client
    with open_gallery(g) as gallery, KeyRing.open(gallery.path) as ring:
        _, reader = ring.create("viewer", "read")
        _, writer = ring.create("editor", "write")
    read, write = ({"Authorization": f"Bearer {k}"} for k in (reader, writer))
    assert c.get("/v1/clusters").status_code == 401
    listing = c.get("/v1/clusters", headers=read).json()
    assert [k["size"] for k in listing["clusters"]] == [4, 4]
    first, second = (k["id"] for k in listing["clusters"])
    r = c.post(f"/v1/clusters/{first}/name", json={"name": "Ada"}, headers=read)
    assert r.status_code == 403
    r = c.post(f"/v1/clusters/{first}/name", json={"name": "Ada", "person_id": 1}, headers=write)
    assert r.status_code == 422
    ada = c.post(f"/v1/clusters/{first}/name", json={"name": "Ada"}, headers=write).json()
    assert ada["faces"] == 4 and ada["person"]["templates"] == 4
    r = c.post(f"/v1/clusters/{second}/merge", json={"from_cluster_id": first}, headers=write)
    assert r.status_code == 404  # named: no longer a cluster
    face = c.get("/v1/clusters", headers=read).json()["clusters"][0]["faces"][-1]
    r = c.delete(f"/v1/clusters/{second}/faces/{face['id']}", headers=write)
    assert r.status_code == 200 and r.json()["id"] == face["id"]
    bob = c.post(f"/v1/clusters/{second}/name", json={"name": "Bob"}, headers=write).json()
    ids = (ada["person"]["id"], bob["person"]["id"])
    found = c.get("/v1/photos", params={"person": ids[0]}, headers=read).json()
    assert [Path(p).name for p in found["photos"]] == ["both.png", "0.png", "1.png", "2.png"]
    both = c.get(f"/v1/photos?person={ids[0]}&person={ids[1]}", headers=read).json()
    assert [Path(p).name for p in both["photos"]] == ["both.png"]
    assert c.get("/v1/photos?person=999", headers=read).status_code == 404
    assert c.get("/v1/photos", headers=read).status_code == 422
