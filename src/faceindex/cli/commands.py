"""The subcommands. Each builds settings at the edge and calls the library."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faceindex.cli.exit_codes import NO_MATCH, OK, PARTIAL_FAILURE, exit_code_for
from faceindex.cli.main import dumps, usage_error
from faceindex.config import Settings
from faceindex.errors import FaceIndexError, InvalidInputError, NotFoundError
from faceindex.pipeline import Pipeline
from faceindex.types import Embedding, Face


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings.from_env()
    det = s.detection
    if getattr(args, "detector", None):
        det = dataclasses.replace(det, detector=args.detector)
    if getattr(args, "min_face", None) is not None:
        det = dataclasses.replace(det, min_face_px=args.min_face)
    emb = s.embedding
    if getattr(args, "embedder", None):
        emb = dataclasses.replace(emb, embedder=args.embedder)
    if getattr(args, "threshold", None) is not None:
        emb = dataclasses.replace(emb, threshold=args.threshold)
    if getattr(args, "flip", False):
        emb = dataclasses.replace(emb, flip=True)
    return dataclasses.replace(s, detection=det, embedding=emb)


def face_json(face: Face) -> dict[str, Any]:
    return {
        "bbox": face.bbox.as_list(),
        "score": round(face.score, 4),
        "landmarks": face.landmarks.as_list() if face.landmarks is not None else [],
        "quality": face.quality.as_dict() if face.quality is not None else None,
    }


def cmd_detect(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_settings(settings_from(args))
    failures = 0
    last_code = OK
    for path in args.images:
        try:
            faces = pipeline.detect(path)
        except FaceIndexError as exc:
            failures += 1
            last_code = exit_code_for(exc)
            if args.json:
                print(dumps({"path": path, "error": _error(exc)}), flush=True)
            print(f"{path}: error: {exc.message}", file=sys.stderr)
            continue
        if args.json:
            print(dumps({"path": path, "faces": [face_json(f) for f in faces]}), flush=True)
        else:
            print(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}")
            for i, f in enumerate(faces, 1):
                b = f.bbox
                q = f.quality
                issues = ", ".join(q.issues) if q and q.issues else "ok"
                print(
                    f"  #{i} box ({b.x1:.0f},{b.y1:.0f})-({b.x2:.0f},{b.y2:.0f}) "
                    f"score {f.score:.2f} quality {q.score if q else 0:.2f} ({issues})"
                )
    if failures == 0:
        return OK
    return last_code if len(args.images) == 1 else PARTIAL_FAILURE


def cmd_verify(args: argparse.Namespace) -> int:
    if args.pairs:
        if args.a or args.b:
            return usage_error("give either two photos or --pairs, not both")
        return _verify_pairs(args)
    if not (args.a and args.b):
        return usage_error("verify needs two photos A B (or --pairs PAIRS.csv)")
    pipeline = Pipeline.from_settings(settings_from(args))
    result = pipeline.verify(args.a, args.b)
    if args.json:
        print(
            dumps(
                {
                    "similarity": round(result.similarity, 6),
                    "match": result.match,
                    "threshold": result.threshold,
                    "model": result.model_id,
                }
            )
        )
    else:
        verdict = "same person" if result.match else "different people"
        print(
            f"{verdict}: similarity {result.similarity:.3f} "
            f"(threshold {result.threshold:.3f}, model {result.model_id})"
        )
    return OK if result.match else NO_MATCH


def _read_pairs(csv_path: Path) -> Iterator[tuple[int, str, str]]:
    if not csv_path.is_file():
        raise NotFoundError(f"{csv_path}: no such file", path=str(csv_path))
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip().lower() for c in (reader.fieldnames or [])]
            if "a" not in fields or "b" not in fields:
                raise InvalidInputError(
                    f"{csv_path}: header must name columns 'a' and 'b' (got {fields})",
                    path=str(csv_path),
                )
            reader.fieldnames = fields
            for line, row in enumerate(reader, start=2):
                a, b = (row.get("a") or "").strip(), (row.get("b") or "").strip()
                yield line, a, b
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{csv_path}: not a UTF-8 CSV file", path=str(csv_path)) from exc
    except csv.Error as exc:
        raise InvalidInputError(f"{csv_path}: malformed CSV ({exc})", path=str(csv_path)) from exc


def _verify_pairs(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    csv_path = Path(args.pairs)
    root = Path(args.root) if args.root else csv_path.parent
    pairs = list(_read_pairs(csv_path))
    pipeline = Pipeline.from_settings(settings_from(args))
    cache: dict[str, Embedding | FaceIndexError] = {}

    def embedding_of(rel: str, line: int) -> Embedding:
        if not rel:
            raise InvalidInputError(f"line {line}: empty path", line=line)
        if rel not in cache:
            try:
                face = pipeline.largest_face(root / rel)
                if face.embedding is None:
                    raise InvalidInputError(f"{rel}: face could not be embedded")
                cache[rel] = face.embedding
            except FaceIndexError as exc:
                cache[rel] = exc
        value = cache[rel]
        if isinstance(value, FaceIndexError):
            raise value
        return value

    failures = matches = 0
    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        task = progress.add_task("verifying pairs", total=len(pairs))
        for line, a, b in pairs:
            try:
                result = pipeline.compare(embedding_of(a, line), embedding_of(b, line))
                matches += result.match
                record: dict[str, Any] = {
                    "a": a,
                    "b": b,
                    "similarity": round(result.similarity, 6),
                    "match": result.match,
                }
            except FaceIndexError as exc:
                failures += 1
                record = {"a": a, "b": b, "error": _error(exc)}
            if args.json:
                print(dumps(record), flush=True)
            elif "error" in record:
                print(f"{a}  {b}  error: {record['error']['message']}")
            else:
                verdict = "match" if record["match"] else "no match"
                print(f"{a}  {b}  {record['similarity']:.3f}  {verdict}")
            progress.advance(task)
    print(
        f"{len(pairs)} pairs: {matches} match, {len(pairs) - matches - failures} no match, "
        f"{failures} failed (threshold {pipeline.threshold:.3f}, model {pipeline.model_id})",
        file=sys.stderr,
    )
    return OK if failures == 0 else PARTIAL_FAILURE


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from faceindex.eval import protocols
    from faceindex.eval.report import write_report

    pipeline = Pipeline.from_settings(settings_from(args))
    embed = protocols.pipeline_embed_fn(pipeline)
    groups = protocols.load_groups(args.groups) if args.groups else None
    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        task = progress.add_task("embedding photos", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result: protocols.PairsResult | protocols.GalleryResult
        if args.eval_action == "pairs":
            result = protocols.evaluate_pairs_csv(
                args.pairs,
                embed,
                threshold=pipeline.threshold,
                root=args.root,
                target_fmr=args.target_fmr,
                groups=groups,
                progress=advance,
            )
        else:
            result = protocols.evaluate_gallery(
                args.folder,
                embed,
                threshold=pipeline.threshold,
                enrol_per_person=args.enrol,
                unknown_fraction=args.unknown_fraction,
                seed=args.seed,
                groups=groups,
                target_fpir=args.target_fpir,
                progress=advance,
            )
    written = write_report(result, args.out)
    if args.json:
        print(result.to_json(indent=None))
    else:
        _print_eval_summary(result)
    print(f"report: {Path(args.out) / 'report.html'} ({len(written)} files)", file=sys.stderr)
    return OK


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_eval_summary(result: Any) -> None:
    v = result.verification
    if v is not None:
        print(
            f"verification: AUC {_fmt(v.auc)}  EER {_fmt(v.eer)}  "
            f"({v.n_genuine} genuine, {v.n_impostor} impostor trials)"
        )
        for p in v.tar_at_far:
            note = "" if p.measurable else " (too few impostors to measure)"
            print(f"  TAR at FAR {p.far:g}: {_fmt(p.tar)}{note}")
        print(f"  at threshold {v.threshold:.3f}: FMR {_fmt(v.fmr)}  FNMR {_fmt(v.fnmr)}")
        print(f"  recommended threshold for FMR {v.target_fmr:g}: {v.recommended_threshold:.4f}")
    ident = getattr(result, "identification", None)
    if ident is not None:
        print(
            f"identification ({ident.rule}): rank-1 {_fmt(ident.rank1)}  "
            f"({ident.n_mated} mated, {ident.n_nonmated} non-mated probes)"
        )
        r = ident.at_threshold
        print(f"  at threshold: FPIR {_fmt(r.fpir)}  FNIR {_fmt(r.fnir)}")
        if ident.at_target is not None:
            t = ident.at_target
            print(f"  FNIR at FPIR {t.fpir:g}: {_fmt(t.fnir)} (threshold {t.threshold:.4f})")
    for breakdown in (result.groups, getattr(result, "open_set_groups", None)):
        if breakdown is not None:
            _print_groups(breakdown)


def _print_groups(g: Any) -> None:
    first, second = g.names
    print(f"per group at threshold {g.threshold:.3f}:")
    for row in g.groups:
        print(f"  {row.group:<12} {first} {_fmt(row.fmr)}  {second} {_fmt(row.fnmr)}")
    for name, d in ((first, g.fmr_disparity), (second, g.fnmr_disparity)):
        ratio = "-" if d.ratio is None else ("inf" if d.ratio == float("inf") else f"{d.ratio:.2f}")
        print(f"  {name} worst/best: {ratio} ({d.worst_group} vs {d.best_group})")


def cmd_models(args: argparse.Namespace) -> int:
    from faceindex.detection import DETECTORS
    from faceindex.embedding import EMBEDDERS, EmbedderSpec

    defaults = Settings()
    specs: list[EmbedderSpec] = [
        EMBEDDERS.get(name).spec  # type: ignore[attr-defined]
        for name in EMBEDDERS.names()
    ]
    if args.json:
        print(
            dumps(
                {
                    "detectors": DETECTORS.names(),
                    "default_detector": defaults.detection.detector,
                    "embedders": [dataclasses.asdict(s) for s in specs],
                    "default_embedder": defaults.embedding.embedder,
                }
            )
        )
        return OK
    detectors = ", ".join(DETECTORS.names())
    print(f"detectors: {detectors} (default {defaults.detection.detector})")
    print(f"embedders (default {defaults.embedding.embedder}):")
    for s in specs:
        print(
            f"  {s.name:<12} {s.model_id:<22} dim {s.dim:<4} "
            f"threshold {s.threshold:.3f} at FMR {s.target_fmr:g}"
        )
    return OK


def _error(exc: FaceIndexError) -> dict[str, str]:
    return {"code": exc.code, "message": exc.message}
