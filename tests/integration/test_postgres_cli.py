"""``faceindex ... --gallery postgresql://...`` end to end (fake backends, a real server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from faceindex.cli.context import CliContext
from faceindex.cli.main import main
from faceindex.config import DetectionSettings, EmbeddingSettings, Settings
from pg_server import SECRET_PASSWORD, SECRET_ROLE, PgServer

FAKE = Settings(
    detection=DetectionSettings(detector="fake"), embedding=EmbeddingSettings(embedder="fake")
)
PhotoOf = Callable[..., Path]


@pytest.fixture()
def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    import os

    for key in list(os.environ):
        if key.startswith("FACEINDEX_"):
            monkeypatch.delenv(key)

    def cli(*argv: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in argv], context_factory=lambda a: CliContext(a, settings=FAKE))
        out, err = capsys.readouterr()
        return code, out, err

    return cli


def test_enroll_identify_people_delete_check_on_postgres(
    run: Callable[..., tuple[int, str, str]], pg_url: str, photo_of: PhotoOf
) -> None:
    g = ("--gallery", pg_url)
    assert run("enroll", "Ada", photo_of(1), *g)[0] == 0
    assert run("enroll", "Bob", photo_of(2), *g)[0] == 0
    code, out, _ = run("identify", photo_of(1, variant=1), "--json", *g)
    assert code == 0 and "Ada" in out
    code, out, _ = run("people", "list", "--json", *g)  # JSON lines, one person each
    assert code == 0 and [json.loads(line)["name"] for line in out.splitlines()] == ["Ada", "Bob"]
    assert run("people", "remove", "Bob", "--yes", *g)[0] == 0
    code, out, _ = run("people", "list", "--json", *g)
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["Ada"]
    code, out, err = run("check", *g)
    assert code == 0 and "vacuumed" in out + err, out + err
    code, out, err = run("keys", "create", "--name", "ops", "--scopes", "read", *g)
    assert code == 0 and "fik_" in out + err


def test_the_photo_library_on_a_postgres_gallery(
    run: Callable[..., tuple[int, str, str]], pg_url: str, tmp_path: Path
) -> None:
    """scan, clusters, name a cluster, re-scan, photos of a person, erasure: as on a file."""
    from faceindex.testing.synthetic import synthetic_photo_bytes

    folder = tmp_path / "album"
    folder.mkdir()
    for person in (1, 2):
        for v in range(3):
            (folder / f"p{person}_{v}.png").write_bytes(synthetic_photo_bytes([person], variant=v))
    g = ("--gallery", pg_url)
    code, out, err = run("scan", folder, "--json", *g)
    assert code == 0, out + err
    assert json.loads(out)["faces"] == 6
    code, out, err = run("clusters", "--json", *g)
    assert code == 0, out + err
    listing = json.loads(out)
    assert [c["size"] for c in listing["clusters"]] == [3, 3]
    first = listing["clusters"][0]
    people = {Path(f["path"]).name.split("_")[0] for f in first["faces"]}
    assert len(people) == 1
    assert run("clusters", "name", str(first["id"]), "Ada", *g)[0] == 0
    code, out, _ = run("clusters", "--json", *g)
    assert [c["size"] for c in json.loads(out)["clusters"]] == [3]
    (folder / "later.png").write_bytes(synthetic_photo_bytes([int(people.pop()[1:])], variant=6))
    code, out, err = run("scan", folder, "--json", *g)
    assert code == 0 and json.loads(out)["recognised"] == 1, out + err
    assert run("people", "remove", "Ada", "--yes", *g)[0] == 0
    code, out, _ = run("clusters", "--json", *g)
    assert [c["size"] for c in json.loads(out)["clusters"]] == [3]  # the other person's


def test_cli_errors_name_the_database_without_its_password(
    run: Callable[..., tuple[int, str, str]], pg_server: PgServer
) -> None:
    url = pg_server.url("no_such_db", user=SECRET_ROLE, password=SECRET_PASSWORD)
    code, out, err = run("people", "list", "--gallery", url)
    assert code != 0 and "Traceback" not in out + err
    assert SECRET_PASSWORD not in out + err and "***" in out + err
