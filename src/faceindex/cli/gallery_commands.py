"""Gallery subcommands: enroll, identify, people, index, audit, keys."""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

from faceindex.cli.commands import settings_from
from faceindex.cli.exit_codes import OK, PARTIAL_FAILURE
from faceindex.cli.main import dumps, usage_error
from faceindex.errors import ConfigError, FaceIndexError, InvalidInputError, NotFoundError
from faceindex.gallery import default_gallery_path
from faceindex.gallery.service import EnrolmentReport, EnrolStatus, FaceIdentity, Gallery
from faceindex.pipeline import Pipeline
from faceindex.privacy.crypto import TemplateKey

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_key(args: argparse.Namespace) -> TemplateKey | None:
    if getattr(args, "key_file", None):
        return TemplateKey.from_file(args.key_file)
    return TemplateKey.from_env()


def open_from(args: argparse.Namespace, *, with_pipeline: bool = True, **options: Any) -> Gallery:
    path = Path(args.gallery).expanduser() if args.gallery else default_gallery_path()
    pipeline = Pipeline.from_settings(settings_from(args)) if with_pipeline else _NoPipeline()
    return Gallery.open(path, pipeline=pipeline, key=load_key(args), **options)  # type: ignore[arg-type]


class _NoPipeline:
    """Stands in for the pipeline in commands that never look at faces (no model loads)."""

    threshold = 0.0
    model_id = ""
    embedder = None

    def __getattr__(self, name: str) -> Any:
        raise ConfigError("this command does not use the recognition pipeline")


# -- enroll ---------------------------------------------------------------------------


def cmd_enroll(args: argparse.Namespace) -> int:
    if args.folders:
        if args.name or args.images:
            return usage_error("give either NAME IMG... or --folders DIR, not both")
        return _enroll_folders(args)
    if not args.name or not args.images:
        return usage_error("enroll needs a NAME and at least one photo (or --folders DIR)")
    with open_from(args, keep_photos=args.keep_photos) as gallery:
        report = gallery.enroll(args.name, args.images)
    _print_report(args, args.name, report)
    return OK if not report.rejected else PARTIAL_FAILURE


def _print_report(args: argparse.Namespace, name: str, report: EnrolmentReport) -> None:
    if args.json:
        print(
            dumps(
                {
                    "person": report.person.as_dict() if report.person else None,
                    "photos": [o.as_dict() for o in report.outcomes],
                }
            ),
            flush=True,
        )
        return
    for o in report.outcomes:
        why = f" ({', '.join(o.reasons)})" if o.reasons else ""
        flags = f" [flagged: {', '.join(o.flags)}]" if o.flags else ""
        print(f"{o.source}: {o.status}{why}{flags}")
    total = report.person.templates if report.person else 0
    print(
        f"{name}: {len(report.accepted)} accepted, {len(report.rejected)} rejected; "
        f"{total} templates in the gallery"
    )


def _person_folders(root: Path) -> list[tuple[str, list[Path]]]:
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such folder", path=str(root))
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if photos:
            out.append((folder.name, photos))
    if not out:
        raise InvalidInputError(f"{root}: no person folders with photos (expected DIR/NAME/*.jpg)")
    return out


def _enroll_folders(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    people = _person_folders(Path(args.folders))
    total = sum(len(photos) for _, photos in people)
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    start = time.perf_counter()
    with open_from(args, keep_photos=args.keep_photos) as gallery:
        gallery.pipeline.warm_up()
        with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
            task = progress.add_task("enrolling", total=total)
            for name, photos in people:
                for photo in photos:
                    # One photo at a time: each is committed on its own, so an interrupted
                    # run keeps what it did and a re-run skips it (duplicate by hash).
                    report = gallery.enroll(name, [photo], sources=[str(photo)])
                    outcome = report.outcomes[0]
                    counts[str(outcome.status)] += 1
                    for r in outcome.reasons:
                        if outcome.status is EnrolStatus.REJECTED:
                            reasons[r] += 1
                    if args.json:
                        print(dumps({"person": name, **outcome.as_dict()}), flush=True)
                    progress.advance(task)
    elapsed = time.perf_counter() - start
    print(
        f"{total} photos of {len(people)} people in {elapsed:.1f} s "
        f"({total / elapsed:.1f} photos/s): {counts['accepted']} accepted, "
        f"{counts['duplicate']} already enrolled, {counts['rejected']} rejected",
        file=sys.stderr,
    )
    if reasons:
        summary = ", ".join(f"{r} {n}" for r, n in reasons.most_common())
        print(f"rejections: {summary}", file=sys.stderr)
    return OK if not counts["rejected"] else PARTIAL_FAILURE


# -- identify -------------------------------------------------------------------------


def _hit(h: Any) -> dict[str, Any] | None:
    return None if h is None else h.as_dict()


def face_identity_json(f: FaceIdentity) -> dict[str, Any]:
    return {
        "bbox": f.bbox.as_list(),
        "person": f.person.name if f.person else None,
        "similarity": None if f.similarity is None else round(f.similarity, 6),
        "decision": str(f.decision),
        "best": _hit(f.best),
        "runner_up": _hit(f.runner_up),
    }


def cmd_identify(args: argparse.Namespace) -> int:
    failures = 0
    with open_from(args) as gallery:
        for path in args.images:
            try:
                faces = gallery.identify(path)
            except FaceIndexError as exc:
                if isinstance(exc, ConfigError):
                    raise
                failures += 1
                if args.json:
                    print(
                        dumps({"path": path, "error": {"code": exc.code, "message": exc.message}})
                    )
                print(f"{path}: error: {exc.message}", file=sys.stderr)
                continue
            if args.json:
                print(
                    dumps({"path": path, "faces": [face_identity_json(f) for f in faces]}),
                    flush=True,
                )
                continue
            print(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}")
            for f in faces:
                who = f.person.name if f.person else "unknown"
                if f.decision == "ambiguous" and f.best and f.runner_up:
                    who = f"unknown (ambiguous: {f.best.name} or {f.runner_up.name})"
                sim = f" similarity {f.similarity:.3f}" if f.similarity is not None else ""
                print(f"  {who}{sim}  box {f.bbox.as_list()}")
    if failures == 0:
        return OK
    return PARTIAL_FAILURE if len(args.images) > 1 else 3


# -- people ---------------------------------------------------------------------------


def _ref(text: str) -> int | str:
    return text


def cmd_people(args: argparse.Namespace) -> int:
    with open_from(args, with_pipeline=False) as gallery:
        action = args.people_action
        if action == "list":
            people = gallery.people(search=args.search, offset=args.offset, limit=args.limit)
            if args.json:
                for p in people:
                    print(dumps(p.as_dict()))
            else:
                for p in people:
                    print(f"#{p.id:<6} {p.name:<30} {p.templates} templates")
                print(
                    f"{gallery.store.count_persons()} people in {gallery.store.path}",
                    file=sys.stderr,
                )
            return OK
        if action == "show":
            p = gallery.person(_ref(args.person))
            templates = gallery.store.templates(p.id)
            if args.json:
                info = p.as_dict()
                info["template_list"] = [
                    {
                        "id": t.id,
                        "model_id": t.model_id,
                        "quality": t.quality,
                        "source": t.source,
                        "encrypted": t.encrypted,
                        "created_at": t.created_at,
                    }
                    for t in templates
                ]
                print(dumps(info))
            else:
                print(f"#{p.id} {p.name} (external id {p.external_id or '-'})")
                print(
                    f"  created {p.created_at}, updated {p.updated_at}, metadata {dict(p.metadata)}"
                )
                for t in templates:
                    q = f"{t.quality:.2f}" if t.quality is not None else "-"
                    print(f"  template #{t.id} quality {q} from {t.source or '-'}")
            return OK
        if action == "rename":
            p = gallery.rename(_ref(args.person), args.new_name)
            print(dumps(p.as_dict()) if args.json else f"#{p.id} is now {p.name}")
            return OK
        if action == "remove":
            p = gallery.person(_ref(args.person))
            if not args.yes:
                if not sys.stdin.isatty():
                    return usage_error("refusing to delete without --yes (no terminal to ask)")
                answer = input(f"Delete {p.name} (#{p.id}) and all {p.templates} templates? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("nothing deleted", file=sys.stderr)
                    return OK
            n = gallery.remove(p.id)
            if args.json:
                print(dumps({"deleted": p.id, "templates": n}))
            else:
                print(f"deleted {p.name} (#{p.id}) and {n} templates")
            return OK
    return usage_error(f"unknown people action {args.people_action!r}")


# -- index, audit, keys ---------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    with open_from(args, with_pipeline=False, index_backend=args.backend) as gallery:
        start = time.perf_counter()
        size = gallery.rebuild_index()
        elapsed = time.perf_counter() - start
    if args.json:
        print(dumps({"templates": size, "backend": args.backend, "seconds": round(elapsed, 3)}))
    else:
        print(f"index rebuilt: {size} templates ({args.backend}) in {elapsed:.2f} s")
    return OK


def cmd_reembed(args: argparse.Namespace) -> int:
    new = Pipeline.from_settings(settings_from(args))
    with open_from(args, with_pipeline=False) as gallery:
        old = gallery.store.model_id
        start = time.perf_counter()
        n = gallery.reembed(new)
        elapsed = time.perf_counter() - start
    if args.json:
        print(dumps({"from": old, "to": new.model_id, "templates": n}))
    else:
        print(f"re-embedded {n} templates: {old} -> {new.model_id} in {elapsed:.1f} s")
    return OK


def cmd_audit(args: argparse.Namespace) -> int:
    with open_from(args, with_pipeline=False) as gallery:
        person_id = gallery.person(args.person).id if args.person else None
        events = gallery.audit(
            action=args.action,
            person_id=person_id,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
    for e in events:
        if args.json:
            print(dumps(e))
        else:
            who = f" person #{e['person_id']}" if e["person_id"] is not None else ""
            print(f"{e['at']}  {e['actor']:<10} {e['action']:<15}{who}  {e['decision'] or ''}")
    return OK


def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_action == "generate":
        key = TemplateKey.generate()
        out = Path(args.out)
        if out.exists():
            return usage_error(f"{out} exists; refusing to overwrite a key")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch(mode=0o600)
        out.write_text(key.to_text() + "\n")
        print(
            f"wrote key {key.key_id} to {out} (keep it safe: without it the gallery is unreadable)"
        )
        return OK
    with open_from(args, with_pipeline=False) as gallery:
        if args.keys_action == "status":
            ids = sorted(str(k) for k in gallery.store.key_ids())
            print(dumps({"key_ids": ids}) if args.json else "key ids in use: " + ", ".join(ids))
            return OK
        new_key = TemplateKey.from_file(args.new_key_file) if args.new_key_file else None
        if new_key is None and not args.decrypt:
            return usage_error("keys rotate needs --new-key-file FILE (or --decrypt)")
        n = gallery.store.rekey(new_key)
        with gallery.store.transaction() as conn:
            gallery.store.audit(
                conn,
                "keys_rotate",
                actor=gallery.actor,
                details={"key_id": new_key.key_id if new_key else None, "templates": n},
            )
    target = new_key.key_id if new_key else "no key (plaintext)"
    print(f"re-encrypted {n} templates with {target}")
    return OK
