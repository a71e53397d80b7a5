"""``faceindex serve`` (the REST API and web UI) and ``faceindex keys create|list|revoke``.

Only argparse is imported here at module level: the parsers are built on every command
line, and the web stack (FastAPI, uvicorn) loads only when ``serve`` runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faceindex.cli.exit_codes import OK
from faceindex.cli.main import dumps, usage_error

log = logging.getLogger("faceindex.cli")

#: The ``keys`` actions handled here (``generate``, ``status`` and ``rotate`` manage the
#: template-encryption key, in :mod:`faceindex.cli.gallery_commands`).
API_KEY_ACTIONS = ("create", "list", "revoke")


def add_api_parsers(
    sub: Any, add_gallery_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Register ``serve``, and add the API key actions to the existing ``keys`` command.

    Each parser gets a ``handler`` default, so the caller dispatches with
    ``args.handler(args)``.
    """
    p = sub.add_parser(
        "serve",
        help="run the REST API and the web UI",
        description="Serve the REST API under /v1 (OpenAPI at /openapi.json) and the web UI "
        "at /. Requests need an API key (faceindex keys create) unless --no-auth is given.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: local)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="no API keys: anyone who can reach the server can use it (local testing only)",
    )
    p.add_argument(
        "--keep-photos",
        action="store_true",
        help="keep enrolled photos (thumbnails in the UI, re-embedding later)",
    )
    p.add_argument(
        "--rate-limit",
        type=int,
        default=600,
        metavar="N",
        help="requests per API key per minute (default 600; 0 = no limit)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, metavar="MB", help="largest image (20)"
    )
    p.add_argument(
        "--model-workers",
        type=int,
        default=2,
        metavar="N",
        help="requests doing model work at once (default 2)",
    )
    p.add_argument("--detector", help="detector: yunet (default), dlib-hog, dlib-cnn")
    p.add_argument("--embedder", help="embedder: fusion (default), sface, dlib-resnet")
    p.add_argument("--threshold", type=float, help="match threshold (cosine similarity)")
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument(
        "--docs",
        action="store_true",
        help="serve Swagger UI at /docs (its page loads scripts from a public CDN)",
    )
    add_gallery_options(p)
    p.set_defaults(handler=cmd_serve)

    keys = sub.choices["keys"]
    # argparse has no public accessor for a parser's subcommands; this is the usual way.
    acts = next(a for a in keys._actions if isinstance(a, argparse._SubParsersAction))
    a = acts.add_parser(
        "create",
        help="create a REST API key (prints its secret once)",
        description="Create an API key for the REST API. The secret is printed once and only "
        "its hash is stored: keep it somewhere safe.",
    )
    a.add_argument("--name", required=True, help="who or what the key is for")
    a.add_argument(
        "--scopes",
        default="read",
        help="comma-separated: read, write, admin (admin implies write implies read)",
    )
    a = acts.add_parser("list", help="list the REST API keys (never their secrets)")
    a = acts.add_parser("revoke", help="revoke a REST API key at once")
    a.add_argument("key_id", type=int, metavar="ID", help="the key's id (see keys list)")
    for name in API_KEY_ACTIONS:
        a = acts.choices[name]
        add_gallery_options(a)
        a.add_argument("--json", action="store_true", help="JSON on stdout")
        a.set_defaults(handler=cmd_apikeys)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import dataclasses

    import uvicorn

    from faceindex.api.app import create_app, pipeline_settings
    from faceindex.api.settings import ApiSettings
    from faceindex.cli.commands import settings_from
    from faceindex.gallery import open_gallery
    from faceindex.pipeline import Pipeline
    from faceindex.privacy.crypto import TemplateKey

    if args.rate_limit < 0:
        return usage_error("--rate-limit must not be negative")
    if args.max_upload_mb <= 0 or args.model_workers < 1:
        return usage_error("--max-upload-mb must be positive and --model-workers at least 1")
    key_file = Path(args.key_file).expanduser() if args.key_file else None
    settings = ApiSettings(
        host=args.host,
        port=args.port,
        gallery=Path(args.gallery).expanduser() if args.gallery else None,
        no_auth=args.no_auth,
        keep_photos=args.keep_photos,
        key_file=key_file,
        rate_limit_per_minute=args.rate_limit,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        model_workers=args.model_workers,
        docs=args.docs,
    )
    settings = dataclasses.replace(settings, pipeline=settings_from(args))
    logging.getLogger("faceindex").setLevel(logging.INFO)
    if args.no_auth and not _is_loopback(args.host):
        log.warning(
            "--no-auth on %s, a non-loopback address: every machine that can reach it has "
            "full access to the gallery",
            args.host,
        )
    # Open here, not in the app, so that a bad key or gallery fails with the usual exit code.
    key = TemplateKey.from_file(key_file) if key_file else TemplateKey.from_env()
    pipeline = Pipeline.from_settings(pipeline_settings(settings))
    gallery = open_gallery(
        settings.gallery, pipeline=pipeline, key=key, keep_photos=args.keep_photos, actor="api"
    )
    try:
        app = create_app(settings, pipeline=pipeline, gallery=gallery)
        print(
            f"faceindex {'(NO AUTH) ' if args.no_auth else ''}serving {gallery.store.path} on "
            f"http://{args.host}:{args.port}/ (OpenAPI at /openapi.json; Ctrl+C to stop)",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="info",
            access_log=not args.no_access_log,
            server_header=False,
        )
    finally:
        gallery.close()
    return OK


def _gallery_path(args: argparse.Namespace) -> Path:
    from faceindex.gallery import default_gallery_path

    return Path(args.gallery).expanduser() if args.gallery else default_gallery_path()


def cmd_apikeys(args: argparse.Namespace) -> int:
    from faceindex.api import keys as apikeys
    from faceindex.errors import NotFoundError
    from faceindex.gallery.store import SqliteStore

    path = _gallery_path(args)
    if args.keys_action != "create" and not path.is_file():
        raise NotFoundError(f"{path}: no such gallery", path=str(path))
    with SqliteStore(path) as store:
        if args.keys_action == "create":
            with store.transaction() as conn:
                key, secret = apikeys.create_key(conn, args.name, args.scopes)
                store.audit(conn, "api_key_create", actor="cli", details={"key_id": key.id})
            if args.json:
                print(dumps({"key": key.as_dict(), "secret": secret}))
            else:
                scopes = ",".join(key.as_dict()["scopes"])
                print(f"created API key #{key.id} {key.name!r} with scopes {scopes}")
                print(f"secret (shown only now, keep it safe): {secret}")
            return OK
        if args.keys_action == "list":
            with store.transaction() as conn:
                found = apikeys.list_keys(conn)
            if args.json:
                for k in found:
                    print(dumps(k.as_dict()))
                return OK
            for k in found:
                state = "active" if k.active else f"revoked {k.revoked_at}"
                print(
                    f"#{k.id:<4} {k.name:<24} {','.join(k.as_dict()['scopes']):<16} "
                    f"created {k.created_at}  last used {k.last_used_at or '-'}  {state}"
                )
            print(f"{len(found)} API keys in {path}", file=sys.stderr)
            return OK
        if args.keys_action == "revoke":
            with store.transaction() as conn:
                key = apikeys.revoke_key(conn, args.key_id)
                store.audit(conn, "api_key_revoke", actor="cli", details={"key_id": key.id})
            if args.json:
                print(dumps(key.as_dict()))
            else:
                print(f"revoked API key #{key.id} {key.name!r} ({key.revoked_at})")
            return OK
    return usage_error(f"unknown keys action {args.keys_action!r}")
