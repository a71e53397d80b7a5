"""``faceindex serve`` and ``faceindex keys create|list|revoke``, called as the CLI would."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from api_helpers import TestClient, bearer

from faceindex.cli.commands import apikeys, encryption, serve
from faceindex.cli.context import CliContext
from faceindex.cli.main import build_parser, main
from faceindex.pipeline import Pipeline


def _run(argv: list[str], pipeline: Pipeline | None = None) -> int:
    """``faceindex ARGV`` in-process, reusing the session's loaded models when given."""
    return main(argv, context_factory=lambda args: CliContext(args, pipeline=pipeline))


def test_parsers(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["serve", "--port", "9000", "--no-auth", "--gallery", "g.db"])
    assert args.handler is serve.run and (args.port, args.no_auth, args.host) == (
        9000,
        True,
        "127.0.0.1",
    )
    args = parser.parse_args(["keys", "create", "--name", "ci", "--scopes", "read,write"])
    assert args.handler is apikeys.create and args.keys_action == "create"
    args = parser.parse_args(["keys", "revoke", "3", "--json"])
    assert (args.key_id, args.json, args.handler) == (3, True, apikeys.revoke)
    args = parser.parse_args(["keys", "generate", "--out", "k"])  # the old spelling
    assert args.handler is encryption.generate and args.deprecated_spelling
    args = parser.parse_args(["encryption-key", "generate", "--out", "k"])
    assert args.handler is encryption.generate and not args.deprecated_spelling


def test_keys_create_list_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_client: Any
) -> None:
    gallery = str(tmp_path / "gallery.db")
    code = _run(["keys", "create", "--name", "ops", "--scopes", "read,write", "--gallery", gallery])
    assert code == 0
    out = capsys.readouterr().out
    assert "created API key #1 'ops' with scopes read,write" in out
    secret = out.split("keep it safe): ")[1].strip()

    code = _run(["keys", "create", "--name", "admin", "--scopes", "admin", "--gallery", gallery,
                 "--json"])  # fmt: skip
    created = json.loads(capsys.readouterr().out)
    assert created["key"]["scopes"] == ["admin"] and created["secret"].startswith("fik_")

    client: TestClient = make_client(gallery=Path(gallery))
    assert client.post("/v1/people", json={"name": "A"}, headers=bearer(secret)).status_code == 201

    _run(["keys", "list", "--gallery", gallery, "--json"])
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(k["id"], k["name"], k["revoked_at"]) for k in listed] == [
        (1, "ops", None),
        (2, "admin", None),
    ]
    assert listed[0]["last_used_at"] is not None
    _run(["keys", "list", "--gallery", gallery])
    text = capsys.readouterr()
    assert "#1" in text.out and "active" in text.out and "2 API keys" in text.err

    assert _run(["keys", "revoke", "1", "--gallery", gallery]) == 0
    assert "revoked API key #1 'ops'" in capsys.readouterr().out
    assert client.get("/v1/people", headers=bearer(secret)).status_code == 401
    assert _run(["keys", "revoke", "99", "--gallery", gallery]) == 6
    assert _run(["keys", "list", "--gallery", str(tmp_path / "missing.db")]) == 6
    assert "no such gallery" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


def test_serve_builds_the_app(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: Pipeline,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        with TestClient(app) as client:
            seen["health"] = client.get("/v1/health").json()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(Pipeline, "from_settings", classmethod(lambda cls, s=None: pipeline))
    gallery = tmp_path / "g.db"
    with caplog.at_level(logging.WARNING):
        code = _run(
            [
                "serve",
                "--no-auth",
                "--allow-remote-no-auth",
                "--host",
                "0.0.0.0",
                "--port",
                "8123",
                "--gallery",
                str(gallery),
            ]
        )
    assert code == 0
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 8123)
    assert (seen["timeout_keep_alive"], seen["limit_concurrency"]) == (5, 200)
    assert seen["health"]["auth"] is False
    assert any("non-loopback" in r.message for r in caplog.records)
    assert gallery.exists()


def test_serve_refuses_no_auth_on_a_public_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    def fake_run(app: Any, **kwargs: Any) -> None:
        raise AssertionError("must not start")

    monkeypatch.setattr(uvicorn, "run", fake_run)
    gallery = tmp_path / "g.db"
    code = _run(["serve", "--no-auth", "--host", "0.0.0.0", "--gallery", str(gallery)])
    assert code == 7  # ConfigError
    assert "--allow-remote-no-auth" in capsys.readouterr().err
    assert _run(["serve", "--body-timeout", "0", "--gallery", str(gallery)]) == 2
