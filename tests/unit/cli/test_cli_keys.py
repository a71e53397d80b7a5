"""``keys create|list|revoke`` (REST API keys) and ``encryption-key generate|status|rotate``
(template encryption), including the deprecated ``keys generate|status|rotate``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Photos, Run


def test_api_keys(cli: Run, gallery_path: Path, tmp_path: Path) -> None:
    r = cli("keys", "create", "--name", "ops", "--scopes", "read,write")
    assert r.code == 0 and gallery_path.is_file()
    first, second = r.out.splitlines()
    assert first == "created API key #1 'ops' with scopes read,write"
    assert second.startswith("secret (shown only now, keep it safe): fik_")
    r = cli("keys", "create", "--name", "admin", "--scopes", "admin", "--json")
    assert set(r.json) == {"key", "secret"} and r.json["key"]["scopes"] == ["admin"]
    assert r.json["secret"].startswith("fik_") and r.err == ""
    r = cli("keys", "list", "--json")
    assert [(k["id"], k["name"], k["revoked_at"]) for k in r.lines] == [
        (1, "ops", None),
        (2, "admin", None),
    ]
    assert all("secret" not in k and "key_hash" not in k for k in r.lines)
    r = cli("keys", "list")
    assert "#1" in r.out and "active" in r.out and r.err == f"2 API keys in {gallery_path}\n"
    r = cli("keys", "revoke", "1", "--json")
    assert r.code == 0 and r.json["id"] == 1 and r.json["revoked_at"]
    r = cli("keys", "revoke", "2")
    assert r.out.startswith("revoked API key #2 'admin' (")
    assert "revoked" in cli("keys", "list").out
    assert cli("keys", "revoke", "99").code == 6
    assert cli("keys", "create", "--name", "x", "--scopes", "root").code == 3
    audit = [x["action"] for x in cli("audit", "--json").lines]
    assert {"api_key_create", "api_key_revoke"} <= set(audit)
    missing = tmp_path / "missing.db"
    r = cli("keys", "list", "--gallery", missing)
    assert r.code == 6 and "no such gallery" in r.err and not missing.exists()
    assert cli("keys", "revoke", "1", "--gallery", missing).code == 6


@pytest.mark.slow  # about a second: the fast tier stays fast
@pytest.mark.parametrize("spelling", ["encryption-key", "keys"])
def test_encryption_keys(cli: Run, photos: Photos, tmp_path: Path, spelling: str) -> None:
    deprecated = spelling == "keys"

    def run(*argv: str | Path) -> tuple[int, str]:
        r = cli(spelling, *argv)
        warnings = [line for line in r.err.splitlines() if "deprecated" in line]
        if deprecated:
            action = str(argv[0])
            assert warnings == [
                f"faceindex: warning: 'faceindex keys {action}' is deprecated; "
                f"use 'faceindex encryption-key {action}'"
            ]
        else:
            assert warnings == []
        return r.code, r.out

    key1, key2 = tmp_path / "k1", tmp_path / "sub" / "k2"
    code, out = run("generate", "--out", key1)
    assert code == 0 and out.startswith("wrote key ") and f"to {key1}" in out
    assert run("generate", "--out", key2)[0] == 0
    assert run("generate", "--out", key2)[0] == 2  # never overwrite a key
    assert oct(key1.stat().st_mode & 0o777) == "0o600"

    assert cli("enroll", "Ann", photos.of(1), "--key-file", key1).code == 0
    r = cli("identify", photos.of(1, 1), photos.of(1, 2))
    assert r.code == 7 and "encrypted" in r.err and r.out == ""  # stops at the first photo
    r = cli("identify", photos.of(1, 1), "--key-file", key2)
    assert r.code == 7 and "wrong key" in r.err

    code, out = run("status", "--key-file", key1)
    assert code == 0 and out.startswith("key ids in use: ")
    r = cli(spelling, "status", "--key-file", key1, "--json")
    assert r.code == 0 and len(r.json["key_ids"]) == 1
    assert run("rotate", "--key-file", key1)[0] == 2  # needs --new-key-file or --decrypt
    code, out = run("rotate", "--new-key-file", key2, "--key-file", key1)
    assert code == 0 and "re-encrypted 1 template with " in out
    r = cli("identify", photos.of(1, 1), "--key-file", key2, "--json")
    assert r.code == 0 and r.lines[0]["faces"][0]["person"] == "Ann"
    code, out = run("rotate", "--decrypt", "--key-file", key2)
    assert code == 0 and out == "re-encrypted 1 template with no key (plaintext)\n"
    assert cli("identify", photos.of(1, 1)).code == 0
    assert "keys_rotate" in {x["action"] for x in cli("audit", "--json").lines}
    assert run("rotate", "--new-key-file", tmp_path / "none")[0] == 7
