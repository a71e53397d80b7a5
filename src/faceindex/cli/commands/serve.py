"""``faceindex serve``: the REST API and the web UI.

FastAPI and uvicorn load only when the command runs.
"""

from __future__ import annotations

import argparse
import logging

from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import Subparsers, add_gallery_options

log = logging.getLogger("faceindex.cli")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
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
        help="no API keys: anyone who can reach the server can use it (local testing only; "
        "refused on a non-loopback --host unless --allow-remote-no-auth is given too)",
    )
    p.add_argument(
        "--allow-remote-no-auth",
        action="store_true",
        help="allow --no-auth on a non-loopback --host: every machine that can reach it gets "
        "full access to the gallery",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="a host name the server answers to (the Host header; repeat for several; '*' "
        "for any). Default: the --host address and localhost, 127.0.0.1, [::1]; any name "
        "when listening on 0.0.0.0 or ::",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds a client has to send a request body (default 30; then 408)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a client has to send a request's headers (default 10; then the "
        "connection is closed)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=200,
        metavar="N",
        help="connections and requests handled at once; more get 503 (default 200)",
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
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    import uvicorn

    from faceindex.api.app import create_app, pipeline_settings
    from faceindex.api.protocol import head_deadline_protocol
    from faceindex.api.settings import ApiSettings
    from faceindex.pipeline import Pipeline

    if args.rate_limit < 0:
        return ctx.out.usage("--rate-limit must not be negative")
    if args.max_upload_mb <= 0 or args.model_workers < 1:
        return ctx.out.usage("--max-upload-mb must be positive and --model-workers at least 1")
    if not (args.body_timeout > 0 and args.header_timeout > 0) or args.max_connections < 1:
        return ctx.out.usage(
            "--body-timeout and --header-timeout must be positive and --max-connections at least 1"
        )
    core = ctx.settings
    settings = ApiSettings(
        host=args.host,
        port=args.port,
        gallery=None if ctx.gallery_url else ctx.gallery_path,  # a URL: opened below
        no_auth=args.no_auth,
        allow_remote_no_auth=args.allow_remote_no_auth,
        allowed_hosts=tuple(args.allowed_host) if args.allowed_host else None,
        body_timeout_s=args.body_timeout,
        max_connections=args.max_connections,
        keep_photos=core.gallery.keep_photos,
        key_file=None,  # the gallery is opened here, with the context's key
        rate_limit_per_minute=args.rate_limit,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        model_workers=args.model_workers,
        docs=args.docs,
        pipeline=core,
    )
    logging.getLogger("faceindex").setLevel(logging.INFO)
    from faceindex.api.settings import is_loopback

    if args.no_auth and not is_loopback(args.host):
        log.warning(
            "--no-auth on %s, a non-loopback address: every machine that can reach it has "
            "full access to the gallery",
            args.host,
        )
    # Opened here, not in the app, so that a bad key or gallery fails with the usual exit
    # code; the pipeline gets the API's image limits.
    pipeline = Pipeline.from_settings(pipeline_settings(settings))
    gallery = ctx.gallery(pipeline=pipeline, actor="api")
    app = create_app(settings, pipeline=pipeline, gallery=gallery)
    ctx.out.note(
        f"faceindex {'(NO AUTH) ' if args.no_auth else ''}serving {gallery.where} on "
        f"http://{args.host}:{args.port}/ (OpenAPI at /openapi.json; Ctrl+C to stop)"
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=not args.no_access_log,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        limit_concurrency=settings.max_connections,
        http=head_deadline_protocol(args.header_timeout),
    )
    return OK
