"""Everything the command line prints: JSON lines, human text, errors, progress bars.

The JSON (``--json``, one object per line on stdout) is the machine contract documented in
the README and stays stable; the human text may change. Each JSON shape is built by one
function here (``*_json``), so a face or a match reads the same in every command; the
human renderings sit next to them. Notes, summaries and errors go to stderr, so stdout
carries only results. Streams are looked up at each write (tests capture them).

Only the standard library is imported at module level; ``rich`` loads with the first
progress bar, and result types are only named for the type checker.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from faceindex.cli.exit_codes import USAGE

if TYPE_CHECKING:
    from faceindex.errors import FaceIndexError
    from faceindex.gallery import EnrolmentReport, Person, TemplateInfo
    from faceindex.types import Face, Identification, Match, Verification

PROG = "faceindex"


def dumps(obj: Any) -> str:
    """One JSON line: UTF-8 text kept readable, anything unknown as its ``str``."""
    return json.dumps(obj, ensure_ascii=False, default=str)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class Output:
    """Where one command run writes; ``json`` is its ``--json`` flag."""

    def __init__(self, *, json: bool = False) -> None:
        self.json = json

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    def emit(self, data: Any, text: str | Callable[[], str] | None) -> None:
        """A result: ``data`` as a JSON line with ``--json``, else ``text`` (if any)."""
        if self.json:
            print(dumps(data), file=self.stdout, flush=True)
        elif text is not None:
            print(text() if callable(text) else text, file=self.stdout, flush=True)

    def line(self, text: str) -> None:
        """Human text on stdout, whatever ``--json`` says (for commands without JSON)."""
        print(text, file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """A summary or remark on stderr (never mixed into the results)."""
        print(text, file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        self.note(f"{PROG}: warning: {message}")

    def error(self, exc: FaceIndexError) -> None:
        """A command's failure: ``{"error": ...}`` on stdout with ``--json``, and one line
        on stderr either way."""
        if self.json:
            print(dumps({"error": exc.to_dict()}), file=self.stdout, flush=True)
        self.note(f"{PROG}: error: {exc.message}")

    def item_error(self, label: str, exc: FaceIndexError, **fields: Any) -> None:
        """One failed item of a batch: ``{"path": label, "error"}`` and a line on stderr."""
        self.emit({**fields, "error": error_json(exc)}, None)
        self.note(f"{label}: error: {exc.message}")

    def usage(self, message: str) -> int:
        """A bad command line the parser could not catch; returns the usage exit code."""
        self.note(f"{PROG}: error: {message}")
        return USAGE

    def deprecated(self, old: str, new: str) -> None:
        self.warn(f"'{PROG} {old}' is deprecated; use '{PROG} {new}'")

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Progress]:
        """A transient progress bar on stderr, shown only on a terminal."""
        from rich.progress import Progress as RichProgress

        with RichProgress(disable=not self.stderr.isatty(), transient=True) as bar:
            yield Progress(bar, bar.add_task(description, total=total))


class Progress:
    def __init__(self, bar: Any, task: Any) -> None:
        self._bar, self._task = bar, task

    def advance(self, steps: int = 1) -> None:
        self._bar.advance(self._task, steps)

    def update(self, done: int, total: int | None) -> None:
        self._bar.update(self._task, completed=done, total=total)


# -- shared shapes ----------------------------------------------------------------------


def error_json(exc: FaceIndexError) -> dict[str, str]:
    """A per-item error: ``{"code", "message"}`` (details stay out of per-item lines)."""
    return {"code": exc.code, "message": exc.message}


def face_json(face: Face) -> dict[str, Any]:
    return {
        "bbox": face.bbox.as_list(),
        "score": round(face.score, 4),
        "landmarks": face.landmarks.as_list() if face.landmarks is not None else [],
        "quality": face.quality.as_dict() if face.quality is not None else None,
    }


def match_json(match: Match | None) -> dict[str, Any] | None:
    if match is None:
        return None
    return {"id": match.person_id, "name": match.name, "similarity": round(match.similarity, 6)}


def identification_json(ident: Identification) -> dict[str, Any]:
    person = ident.person
    return {
        "bbox": ident.bbox.as_list() if ident.bbox is not None else None,
        "person": person.name if person is not None else None,
        "similarity": None if ident.similarity is None else round(ident.similarity, 6),
        "decision": str(ident.decision),
        "best": match_json(ident.best),
        "runner_up": match_json(ident.runner_up),
    }


def template_json(t: TemplateInfo) -> dict[str, Any]:
    return {
        "id": t.id,
        "model_id": t.model_id,
        "quality": t.quality,
        "source": t.source,
        "encrypted": t.encrypted,
        "created_at": t.created_at,
    }


# -- detect, verify ---------------------------------------------------------------------


def detect_text(path: str, faces: Sequence[Face]) -> str:
    lines = [f"{path}: {plural(len(faces), 'face')}"]
    for i, f in enumerate(faces, 1):
        b, q = f.bbox, f.quality
        issues = ", ".join(q.issues) if q and q.issues else "ok"
        lines.append(
            f"  #{i} box ({b.x1:.0f},{b.y1:.0f})-({b.x2:.0f},{b.y2:.0f}) "
            f"score {f.score:.2f} quality {q.score if q else 0:.2f} ({issues})"
        )
    return "\n".join(lines)


def verification_json(v: Verification) -> dict[str, Any]:
    return {
        "similarity": round(v.similarity, 6),
        "match": v.match,
        "threshold": v.threshold,
        "model": v.model_id,
    }


def verification_text(v: Verification) -> str:
    verdict = "same person" if v.match else "different people"
    return (
        f"{verdict}: similarity {v.similarity:.3f} "
        f"(threshold {v.threshold:.3f}, model {v.model_id})"
    )


def pair_json(a: str, b: str, result: Verification | FaceIndexError) -> dict[str, Any]:
    """One line of ``verify --pairs``: the comparison, or why it could not be made."""
    from faceindex.errors import FaceIndexError

    if isinstance(result, FaceIndexError):
        return {"a": a, "b": b, "error": error_json(result)}
    return {"a": a, "b": b, "similarity": round(result.similarity, 6), "match": result.match}


def pair_text(record: Mapping[str, Any]) -> str:
    a, b = record["a"], record["b"]
    if "error" in record:
        return f"{a}  {b}  error: {record['error']['message']}"
    verdict = "match" if record["match"] else "no match"
    return f"{a}  {b}  {record['similarity']:.3f}  {verdict}"


# -- models -----------------------------------------------------------------------------


def models_text(
    detectors: Sequence[str], default_detector: str, specs: Sequence[Any], default_embedder: str
) -> str:
    lines = [
        f"detectors: {', '.join(detectors)} (default {default_detector})",
        f"embedders (default {default_embedder}):",
    ]
    lines += [
        f"  {s.name:<12} {s.model_id:<22} dim {s.dim:<4} "
        f"threshold {s.threshold:.3f} at FMR {s.target_fmr:g}"
        for s in specs
    ]
    return "\n".join(lines)


# -- gallery ----------------------------------------------------------------------------


def enrolment_json(report: EnrolmentReport) -> dict[str, Any]:
    return {
        "person": report.person.as_dict() if report.person else None,
        "photos": [o.as_dict() for o in report.outcomes],
    }


def enrolment_text(name: str, report: EnrolmentReport) -> str:
    lines = []
    for o in report.outcomes:
        why = f" ({', '.join(o.reasons)})" if o.reasons else ""
        flags = f" [flagged: {', '.join(o.flags)}]" if o.flags else ""
        lines.append(f"{o.source}: {o.status}{why}{flags}")
    total = report.person.templates if report.person else 0
    lines.append(
        f"{name}: {len(report.accepted)} accepted, {len(report.rejected)} rejected; "
        f"{total} templates in the gallery"
    )
    return "\n".join(lines)


def identify_text(path: str, faces: Sequence[Identification]) -> str:
    lines = [f"{path}: {plural(len(faces), 'face')}"]
    for f in faces:
        who = f.person.name if f.person else "unknown"
        if f.decision == "ambiguous" and f.best and f.runner_up:
            who = f"unknown (ambiguous: {f.best.name} or {f.runner_up.name})"
        sim = f" similarity {f.similarity:.3f}" if f.similarity is not None else ""
        box = f.bbox.as_list() if f.bbox is not None else None
        lines.append(f"  {who}{sim}  box {box}")
    return "\n".join(lines)


def person_line(p: Person) -> str:
    return f"#{p.id:<6} {p.name:<30} {p.templates} templates"


def person_show_json(p: Person, templates: Sequence[TemplateInfo]) -> dict[str, Any]:
    return {**p.as_dict(), "template_list": [template_json(t) for t in templates]}


def person_show_text(p: Person, templates: Sequence[TemplateInfo]) -> str:
    lines = [
        f"#{p.id} {p.name} (external id {p.external_id or '-'})",
        f"  created {p.created_at}, updated {p.updated_at}, metadata {dict(p.metadata)}",
    ]
    for t in templates:
        q = f"{t.quality:.2f}" if t.quality is not None else "-"
        lines.append(f"  template #{t.id} quality {q} from {t.source or '-'}")
    return "\n".join(lines)


def stats_json(path: Path, model_id: str | None, templates: int, exp: Any) -> dict[str, Any]:
    """``faceindex stats``: the gallery, its threshold, the error rates expected at it."""
    return {
        "gallery": str(path),
        "model": model_id,
        "people": exp.people,
        "templates": templates,
        "threshold": round(exp.threshold, 6),
        "threshold_rule": exp.threshold_rule,
        "target_fpir": exp.target_fpir,
        "expected_fpir": None if exp.fpir is None else round(exp.fpir, 6),
        "expected_fnir": None if exp.fnir is None else round(exp.fnir, 6),
    }


def stats_text(r: Mapping[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "unknown (no calibration for this model)" if v is None else f"{100 * v:.2f}%"

    rule = r["threshold_rule"]
    why = (
        f"set for {r['people']} people to name at most {pct(r['target_fpir'])} of strangers"
        if rule == "size-aware"
        else "fixed"
    )
    return "\n".join(
        [
            f"{r['gallery']}: {r['people']} {'person' if r['people'] == 1 else 'people'}, "
            f"{plural(r['templates'], 'template')}, model {r['model'] or '(none yet)'}",
            f"threshold {r['threshold']:.4f} ({why})",
            f"expected: strangers named (FPIR) {pct(r['expected_fpir'])}, "
            f"enrolled people missed (FNIR) {pct(r['expected_fnir'])}",
        ]
    )


def calibration_json(result: Any, *, stored: bool) -> dict[str, Any]:
    """``faceindex calibrate``: what was measured, what is recommended, what was refused."""
    cal = result.calibration.to_dict()
    return {
        **cal,
        "eer": None if result.eer is None else round(result.eer, 6),
        "refused": list(result.refused),
        "failed": [{"path": p, "code": c} for p, c in result.failed],
        "stored": stored,
    }


def calibration_text(r: Mapping[str, Any]) -> str:
    lines = [
        f"{r['photos']} photos of {r['people']} people ({len(r['failed'])} unusable): "
        f"{r['genuine_pairs']} genuine and {r['impostor_pairs']} impostor pairs; "
        f"EER {fmt(r['eer'])}",
    ]
    if r["threshold"] is not None:
        lines.append(f"verification threshold {r['threshold']:.4f} (FMR {r['target_fmr']:g})")
    tail = r["tail"]
    if tail is not None:
        lines.append(f"open-set tail u {tail['u']:.4f}, beta {tail['beta']:.4f}")
    lines += [f"refused: {reason}" for reason in r["refused"]]
    lines.append("stored in the gallery" if r["stored"] else "not stored (--dry-run)")
    return "\n".join(lines)


def check_text(report: Any) -> str:
    """``faceindex check``: clean, or every trace found."""
    if report.clean:
        return (
            f"{report.path}: clean (integrity ok, WAL empty, {report.deleted_people} "
            f"deleted people without trace, {report.free_pages} free pages zero-filled)"
        )
    return "\n".join([f"{report.path}: NOT clean", *(f"  - {i}" for i in report.issues)])


def audit_text(e: Mapping[str, Any]) -> str:
    who = f" person #{e['person_id']}" if e["person_id"] is not None else ""
    return f"{e['at']}  {e['actor']:<10} {e['action']:<15}{who}  {e['decision'] or ''}"


# -- API keys ---------------------------------------------------------------------------


def apikey_line(k: Any) -> str:
    state = "active" if k.active else f"revoked {k.revoked_at}"
    return (
        f"#{k.id:<4} {k.name:<24} {','.join(k.as_dict()['scopes']):<16} "
        f"created {k.created_at}  last used {k.last_used_at or '-'}  {state}"
    )


# -- eval -------------------------------------------------------------------------------


def eval_text(result: Any) -> str:
    lines: list[str] = []
    v = result.verification
    if v is not None:
        lines.append(
            f"verification: AUC {fmt(v.auc)}  EER {fmt(v.eer)}  "
            f"({v.n_genuine} genuine, {v.n_impostor} impostor trials)"
        )
        for p in v.tar_at_far:
            note = "" if p.measurable else " (too few impostors to measure)"
            lines.append(f"  TAR at FAR {p.far:g}: {fmt(p.tar)}{note}")
        lines.append(f"  at threshold {v.threshold:.3f}: FMR {fmt(v.fmr)}  FNMR {fmt(v.fnmr)}")
        lines.append(
            f"  recommended threshold for FMR {v.target_fmr:g}: {v.recommended_threshold:.4f}"
        )
    ident = getattr(result, "identification", None)
    if ident is not None:
        lines.append(
            f"identification ({ident.rule}): rank-1 {fmt(ident.rank1)}  "
            f"({ident.n_mated} mated, {ident.n_nonmated} non-mated probes)"
        )
        r = ident.at_threshold
        lines.append(f"  at threshold: FPIR {fmt(r.fpir)}  FNIR {fmt(r.fnir)}")
        if ident.at_target is not None:
            t = ident.at_target
            lines.append(f"  FNIR at FPIR {t.fpir:g}: {fmt(t.fnir)} (threshold {t.threshold:.4f})")
    for breakdown in (result.groups, getattr(result, "open_set_groups", None)):
        if breakdown is not None:
            lines += _groups_lines(breakdown)
    return "\n".join(lines)


def _groups_lines(g: Any) -> list[str]:
    first, second = g.names
    lines = [f"per group at threshold {g.threshold:.3f}:"]
    for row in g.groups:
        lines.append(f"  {row.group:<12} {first} {fmt(row.fmr)}  {second} {fmt(row.fnmr)}")
    for name, d in ((first, g.fmr_disparity), (second, g.fnmr_disparity)):
        ratio = "-" if d.ratio is None else ("inf" if d.ratio == float("inf") else f"{d.ratio:.2f}")
        lines.append(f"  {name} worst/best: {ratio} ({d.worst_group} vs {d.best_group})")
    return lines


# -- video ------------------------------------------------------------------------------


def clock(seconds: float, wall: bool) -> str:
    """A wall-clock time (live sources) or a position in the video (files)."""
    import time

    if wall:
        return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{int(seconds % 1 * 10)}"
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes):02d}:{rest:06.3f}"


class HumanEventSink:
    """An event sink (see :mod:`faceindex.video.events`) printing one line per event."""

    def __init__(self, out: Output, *, wall: bool) -> None:
        self.out, self.wall = out, wall

    def emit(self, event: Any) -> None:
        who = event.person or ("unknown" if event.decision == "unknown" else "not yet recognised")
        sim = f" (similarity {event.similarity:.3f})" if event.similarity is not None else ""
        at = event.last_seen if event.event == "left" else event.first_seen
        self.out.line(f"[{clock(at, self.wall)}] {event.event:<10} #{event.track_id} {who}{sim}")

    def close(self) -> None:
        return None


def watch_summary(frames: int, elapsed: float, stats: Any, embedded: int, dropped: int) -> str:
    fps = frames / elapsed if elapsed > 0 else 0.0
    every = stats.frames / stats.detections if stats.detections else 0.0
    return (
        f"{frames} frames in {elapsed:.1f} s ({fps:.1f} fps): detection every {every:.1f} "
        f"frames, {stats.tracks} tracks, {embedded} faces embedded"
        + (f", {dropped} stale frames dropped" if dropped else "")
    )


def anonymize_text(dst: Path, report: Any, mode: str) -> str:
    d = report.as_dict()
    kept = ", ".join(f"{k['person']}" for k in report.kept)
    return (
        f"{dst}: hid {plural(d['faces_hidden'], 'face')} in "
        f"{d['frames_with_hidden_faces']} of {plural(d['frames'], 'frame')} "
        f"(at most {d['max_per_frame']} per frame, {mode})"
        + (f"; left visible: {kept}" if kept else "")
    )
