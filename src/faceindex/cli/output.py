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
import heapq
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from faceindex.cli.exit_codes import USAGE

if TYPE_CHECKING:
    from faceindex.errors import FaceIndexError
    from faceindex.gallery import EnrolmentReport, Person, TemplateInfo
    from faceindex.pipeline import PairVerification
    from faceindex.types import BBox, Face, Identification, Match, Verification

PROG = "faceindex"


def dumps(obj: Any) -> str:
    """One JSON line: UTF-8 text kept readable, anything unknown as its ``str``."""
    return json.dumps(obj, ensure_ascii=False, default=str)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 template``, ``2 templates``; ``many`` for an irregular plural."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def people(n: int) -> str:
    """``1 person``, ``2 people``."""
    return plural(n, "person", "people")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def without_label(label: str, message: str) -> str:
    """``message`` without a leading ``label:`` (library errors often name their file
    already), so that a line ``{label}: error: {message}`` names it once."""
    head = f"{label}:"
    return message[len(head) :].lstrip() if message.startswith(head) else message


class Output:
    """Where one command run writes; ``json`` is its ``--json`` flag, ``verbose`` its
    ``-v`` (progress lines on stderr even when stderr is not a terminal)."""

    def __init__(self, *, json: bool = False, verbose: bool = False) -> None:
        self.json = json
        self.verbose = verbose
        self._bar: Any = None  # the rich Progress on screen, if any

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    def _write(self, stream: TextIO, text: str) -> None:
        """Print one line; a progress bar on screen is taken down around it when the line
        goes to the same terminal (a bar and a line written over it garble each other)."""
        bar = self._bar
        if bar is not None and stream.isatty():
            bar.stop()  # transient: the bar is erased
            try:
                print(text, file=stream, flush=True)
            finally:
                bar.start()
            return
        print(text, file=stream, flush=True)

    def emit(self, data: Any, text: str | Callable[[], str] | None) -> None:
        """A result: ``data`` as a JSON line with ``--json``, else ``text`` (if any)."""
        if self.json:
            self._write(self.stdout, dumps(data))
        elif text is not None:
            self._write(self.stdout, text() if callable(text) else text)

    def line(self, text: str) -> None:
        """Human text on stdout, whatever ``--json`` says (for commands without JSON)."""
        self._write(self.stdout, text)

    def note(self, text: str) -> None:
        """A summary or remark on stderr (never mixed into the results)."""
        self._write(self.stderr, text)

    def warn(self, message: str) -> None:
        self.note(f"{PROG}: warning: {message}")

    def error(self, exc: FaceIndexError) -> None:
        """A command's failure: ``{"error": ...}`` on stdout with ``--json``, and one line
        on stderr either way."""
        if self.json:
            self._write(self.stdout, dumps({"error": exc.to_dict()}))
        self.note(f"{PROG}: error: {exc.message}")

    def item_error(self, label: str, exc: FaceIndexError, **fields: Any) -> None:
        """One failed item of a batch: ``{"path": label, "error"}`` and a line on stderr
        naming the item once (``bad/x.jpg: error: corrupt ...``)."""
        self.emit({**fields, "error": error_json(exc)}, None)
        self.note(f"{label}: error: {without_label(label, exc.message)}")

    def usage(self, message: str) -> int:
        """A bad command line the parser could not catch; returns the usage exit code."""
        self.note(f"{PROG}: error: {message}")
        return USAGE

    def deprecated(self, old: str, new: str) -> None:
        self.warn(f"'{PROG} {old}' is deprecated; use '{PROG} {new}'")

    @contextlib.contextmanager
    def progress(
        self, description: str, total: int | None = None, *, unit: str = "items"
    ) -> Iterator[Progress]:
        """Progress of a long job, on stderr only (never in the results on stdout): a
        transient bar when stderr is a terminal; else, with ``-v``, a line every few
        seconds and one at the end; else nothing."""
        if self.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit),
                TimeRemainingColumn(),
                console=Console(file=self.stderr),
                transient=True,
                redirect_stdout=False,  # results stay on stdout, never through the bar
                redirect_stderr=False,
            )
            with bar:
                self._bar = bar
                try:
                    task = bar.add_task(description, total=total)
                    yield Progress(description, total, bar=bar, task=task)
                finally:
                    self._bar = None
            return
        progress = Progress(description, total, lines=self if self.verbose else None, unit=unit)
        yield progress
        progress.finish()


class Progress:
    """One job's progress: drawn on a rich bar, written as lines, or dropped."""

    #: Seconds between two progress lines (without a terminal, ``-v``).
    LINE_INTERVAL_S = 2.0

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        bar: Any = None,
        task: Any = None,
        lines: Output | None = None,
        unit: str = "items",
    ) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.done = 0
        self._bar, self._task, self._lines = bar, task, lines
        self._start = self._last_line = time.monotonic()

    def advance(self, steps: int = 1) -> None:
        self.update(self.done + steps, self.total)

    def update(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
        elif self._lines is not None:
            now = time.monotonic()
            if now - self._last_line >= self.LINE_INTERVAL_S:
                self._last_line = now
                self._lines.note(self._line())

    def finish(self) -> None:
        """The closing line (``-v`` without a terminal)."""
        if self._lines is not None and self.done:
            elapsed = time.monotonic() - self._start
            self._lines.note(f"{self._line()} in {elapsed:.1f} s")

    def _line(self) -> str:
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        return f"{self.description}: {self.done}{of} {self.unit}{pct}"


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


def box_text(b: BBox) -> str:
    """A box in the human text: whole pixels, ``(x1,y1)-(x2,y2)``, in every command (the
    JSON keeps the library's float pixels, the same in every command too)."""
    return f"({b.x1:.0f},{b.y1:.0f})-({b.x2:.0f},{b.y2:.0f})"


def detect_text(path: str, faces: Sequence[Face]) -> str:
    # Numbered from 0, largest first: the numbers verify's --face-a/--face-b and the API's
    # face_a/face_b take ("#N" is a person id on the command line, so not that).
    lines = [f"{path}: {plural(len(faces), 'face')}"]
    for i, f in enumerate(faces):
        q = f.quality
        issues = ", ".join(q.issues) if q and q.issues else "ok"
        lines.append(
            f"  face {i} box {box_text(f.bbox)} "
            f"score {f.score:.2f} quality {q.score if q else 0:.2f} ({issues})"
        )
    return "\n".join(lines)


def verification_json(v: Verification) -> dict[str, Any]:
    """``match`` is null when the answer is ``unsure`` (``decision``): not a silent false."""
    out: dict[str, Any] = {
        "similarity": round(v.similarity, 6),
        "match": None if v.unsure else v.match,
        "decision": str(v.decision),
        "threshold": v.threshold,
        "model": v.model_id,
    }
    if v.quality is not None:
        out["quality"] = round(v.quality, 3)
    return out


def verification_text(v: Verification) -> str:
    verdict = "same person" if v.match else "different people"
    if v.unsure:
        q = "unknown" if v.quality is None else f"{v.quality:.2f}"
        verdict = f"unsure (face quality {q} is under the floor asked for)"
    return (
        f"{verdict}: similarity {v.similarity:.3f} "
        f"(threshold {v.threshold:.3f}, model {v.model_id})"
    )


def pair_verification_json(pair: PairVerification) -> dict[str, Any]:
    """``verify A B``: the comparison, and which face of each photo was compared."""
    return {
        **verification_json(pair.verification),
        "face_a": pair.a.index,
        "face_b": pair.b.index,
        "bbox_a": pair.a.face.bbox.as_list(),
        "bbox_b": pair.b.face.bbox.as_list(),
        "faces_a": [f.bbox.as_list() for f in pair.a.faces],
        "faces_b": [f.bbox.as_list() for f in pair.b.faces],
    }


def pair_verification_text(pair: PairVerification) -> str:
    """The verdict, then, for a photo with several faces, which one was compared."""
    lines = [verification_text(pair.verification)]
    for side, choice in (("A", pair.a), ("B", pair.b)):
        n = len(choice.faces)
        if n > 1:
            lines.append(
                f"  {side}: compared face {choice.index} of {n} at {box_text(choice.face.bbox)} "
                f"(--face-{side.lower()} N picks another; 0 is the largest)"
            )
    return "\n".join(lines)


def pair_json(
    a: str, b: str, result: Verification | FaceIndexError, *, decision: bool = False
) -> dict[str, Any]:
    """One line of ``verify --pairs``: the comparison, or why it could not be made.
    ``decision`` (under ``--reject-below``): add ``decision`` (``match``, ``no_match`` or
    ``unsure``, when ``match`` is null) and the pair's ``quality``."""
    from faceindex.errors import FaceIndexError

    if isinstance(result, FaceIndexError):
        return {"a": a, "b": b, "error": error_json(result)}
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "similarity": round(result.similarity, 6),
        "match": None if result.unsure else result.match,
    }
    if decision:
        out["decision"] = str(result.decision)
        out["quality"] = None if result.quality is None else round(result.quality, 3)
    return out


def pair_text(record: Mapping[str, Any]) -> str:
    a, b = record["a"], record["b"]
    if "error" in record:
        return f"{a}  {b}  error: {record['error']['message']}"
    verdict = "match" if record["match"] else "no match"
    if record.get("decision") == "unsure":
        verdict = "unsure (face quality too low)"
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


#: Why a photo was not enrolled, or what was noted about it, in words; the JSON keeps the
#: codes (``reasons``, ``flags``). A code missing here is shown with spaces for ``_``.
REASONS: Mapping[str, str] = {
    # the enrolment gate (faceindex.gallery.enrolment)
    "no_face": "no face found",
    "several_faces": "several faces of similar size (crop the photo to one person)",
    "already_enrolled": "already enrolled",
    "duplicate_of_other_person": "the same photo is enrolled for another person",
    "not_embedded": "the face could not be embedded",
    "matches_other_person": "the face matches another enrolled person better "
    "(--force enrols it anyway, flagged)",
    "face_too_small": "face too small",
    "unlike_this_person": "the face does not match this person's enrolled faces "
    "(--force enrols it anyway, flagged)",
    # face quality (faceindex.types.QualityIssue)
    "too_small": "face too small",
    "blurry": "face blurry",
    "too_dark": "photo too dark",
    "too_bright": "photo too bright",
    "extreme_pose": "face turned too far from the camera",
    "cut_off": "face cut off by the edge of the photo",
    # errors of reading the photo (their codes, faceindex.errors)
    "not_found": "no such file",
    "image_decode_error": "not a readable photo",
    "image_too_large": "photo too large",
    "invalid_input": "not a usable photo",
    "multiple_faces": "several faces in the photo",
    "quality_too_low": "face quality too low",
}

#: Flags with an argument (``code:ARG``), in words; ``{}`` is the argument.
_FLAGS: Mapping[str, str] = {
    "ignored_faces": "{} background face(s) left out",
    "crop_fallback": "no face detected: the photo was taken whole as a face crop",
    "closer_to_other_person": "looks more like person #{} than like this person",
    "matches_other_person": "also matches person #{}",
}


def reason_text(code: str) -> str:
    """A rejection reason or enrolment flag in words (``several_faces`` -> "several
    faces of similar size ...")."""
    name, _, arg = code.partition(":")
    if name in _FLAGS and (arg or name not in REASONS):
        words = _FLAGS[name].format(arg)
        if name == "ignored_faces" and arg.isdigit():
            words = f"{plural(int(arg), 'background face')} left out"
        return words
    return REASONS.get(code) or code.replace("_", " ")


def reasons_text(codes: Sequence[str]) -> str:
    return "; ".join(reason_text(c) for c in codes)


def enrolment_text(name: str, report: EnrolmentReport) -> str:
    lines = []
    for o in report.outcomes:
        why = f": {reasons_text(o.reasons)}" if o.reasons else ""
        if o.conflict is not None and o.reasons:
            c = o.conflict
            why = (
                f": looks like {c.name} (#{c.person_id}, similarity {c.similarity:.2f}) more "
                f"than {name}; not enrolled (--force enrols it if this is {name})"
            )
        notes = f" (note: {reasons_text(o.flags)})" if o.flags else ""
        lines.append(f"{o.source}: {o.status}{why}{notes}")
    total = report.person.templates if report.person else 0
    lines.append(
        f"{name}: {len(report.accepted)} accepted, {len(report.rejected)} rejected; "
        f"{plural(total, 'template')} in the gallery"
    )
    return "\n".join(lines)


def enrol_folders_summary(
    n_people: int,
    counts: Mapping[str, int],
    rejected: Sequence[tuple[str, Sequence[str]]],
    elapsed_s: float,
) -> str:
    """The end of ``enroll --folders``: the counts, then each rejected photo and why."""
    total = sum(counts.values())
    rate = f" ({total / elapsed_s:.1f} photos/s)" if elapsed_s > 0 else ""
    lines = [
        f"{plural(total, 'photo')} of {people(n_people)} in {elapsed_s:.1f} s{rate}: "
        f"{counts.get('accepted', 0)} accepted, {counts.get('duplicate', 0)} already "
        f"enrolled, {counts.get('rejected', 0)} rejected"
    ]
    if rejected:
        lines.append(f"not enrolled ({plural(len(rejected), 'photo')}):")
        lines += [f"  {source}: {reasons_text(codes)}" for source, codes in rejected]
    return "\n".join(lines)


def identify_text(path: str, faces: Sequence[Identification]) -> str:
    lines = [f"{path}: {plural(len(faces), 'face')}"]
    for f in faces:
        who = f.person.name if f.person else "unknown"
        sim = f" similarity {f.similarity:.3f}" if f.similarity is not None else ""
        if f.decision == "unsure":
            q = f"{f.quality.score:.2f}" if f.quality is not None else "unknown"
            closest = f"; closest: {f.best.name} {f.best.similarity:.3f}" if f.best else ""
            who, sim = f"unsure (face quality {q} is under the floor asked for{closest})", ""
        elif f.decision == "ambiguous" and f.best and f.runner_up:
            who = f"unknown (ambiguous: {f.best.name} or {f.runner_up.name})"
        elif f.person is None and f.best is not None:
            # Why "unknown": who came closest, and how far from the decision that was.
            who, sim = (
                f"unknown (closest: {f.best.name} {f.best.similarity:.3f}, not similar enough)",
                "",
            )
        box = f"  box {box_text(f.bbox)}" if f.bbox is not None else ""
        lines.append(f"  {who}{sim}{box}")
    return "\n".join(lines)


def person_line(p: Person) -> str:
    return f"#{p.id:<6} {p.name:<30} {plural(p.templates, 'template')}"


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


def stats_json(path: Path | str, model_id: str | None, templates: int, exp: Any) -> dict[str, Any]:
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
        f"set for {people(r['people'])} to name at most {pct(r['target_fpir'])} of strangers"
        if rule == "size-aware"
        else "fixed"
    )
    return "\n".join(
        [
            f"{r['gallery']}: {people(r['people'])}, "
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
        f"{plural(r['photos'], 'photo')} of {people(r['people'])} "
        f"({len(r['failed'])} unusable): {plural(r['genuine_pairs'], 'genuine pair')} and "
        f"{plural(r['impostor_pairs'], 'impostor pair')}; "
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
    if report.clean and not isinstance(report.path, Path):  # a database server (PostgreSQL)
        return (
            f"{report.path}: clean (integrity ok, no erasure pending, vacuumed, "
            f"{plural(report.deleted_people, 'deleted person', 'deleted people')} without trace)"
        )
    if report.clean:
        return (
            f"{report.path}: clean (integrity ok, WAL empty, "
            f"{plural(report.deleted_people, 'deleted person', 'deleted people')} without "
            f"trace, {plural(report.free_pages, 'free page')} zero-filled)"
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
            f"({plural(v.n_genuine, 'genuine trial')}, {plural(v.n_impostor, 'impostor trial')})"
        )
        for p in v.tar_at_far:
            note = "" if p.measurable else " (too few impostors to measure)"
            lines.append(f"  TAR at FAR {p.far:g}: {fmt(p.tar)}{note}")
        lines.append(f"  at threshold {v.threshold:.3f}: FMR {fmt(v.fmr)}  FNMR {fmt(v.fnmr)}")
        lines.append(_recommendation(v))
    ident = getattr(result, "identification", None)
    if ident is not None:
        lines.append(
            f"identification ({ident.rule}): rank-1 {fmt(ident.rank1)}  "
            f"({plural(ident.n_mated, 'mated probe')}, "
            f"{plural(ident.n_nonmated, 'non-mated probe')})"
        )
        r = ident.at_threshold
        lines.append(f"  at threshold: FPIR {fmt(r.fpir)}  FNIR {fmt(r.fnir)}")
        if ident.at_target is not None:
            lines.append(_fnir_at_target(ident.at_target, ident.n_nonmated))
    for breakdown in (result.groups, getattr(result, "open_set_groups", None)):
        if breakdown is not None:
            lines += _groups_lines(breakdown)
    return "\n".join(lines)


def _recommendation(v: Any) -> str:
    """The threshold for the target FMR, only where the trials can measure it: an FMR
    below 1/impostor trials cannot be observed, so no threshold is claimed for it."""
    needed = math.ceil(1.0 / v.target_fmr) if v.target_fmr > 0 else None
    measurable = v.target_fmr * v.n_impostor >= 1.0  # as eval's TAR at FAR says
    if measurable and math.isfinite(v.recommended_threshold):
        return f"  recommended threshold for FMR {v.target_fmr:g}: {v.recommended_threshold:.4f}"
    why = (
        f"it needs at least {needed} impostor trials, there are {v.n_impostor}"
        if needed is not None and not measurable
        else "the trials do not determine it"
    )
    return f"  no threshold recommended for FMR {v.target_fmr:g}: {why}"


def _fnir_at_target(t: Any, n_nonmated: int) -> str:
    """FNIR and its threshold at the target FPIR, only where the non-mated probes can
    measure that FPIR (the same rule as :func:`_recommendation`)."""
    if t.resolved:
        return f"  FNIR at FPIR {t.target_fpir:g}: {fmt(t.fnir)} (threshold {t.threshold:.4f})"
    needed = math.ceil(1.0 / t.target_fpir) if t.target_fpir > 0 else None
    why = (
        f"it needs at least {needed} non-mated probes, there are {n_nonmated}"
        if needed is not None
        else "the probes do not determine it"
    )
    return f"  FNIR at FPIR {t.target_fpir:g}: not measured, no threshold recommended ({why})"


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
    """An event sink (see :mod:`faceindex.video.events`) printing one line per event, as a
    timeline: each event at the moment it happened (appeared: first seen; identified and
    left: last seen), in time order.

    The watcher reports an event some time after that moment (a face is announced once
    recognised or after the decision timeout; it has left after the absence timeout), so
    events arrive out of order. Lines wait until no earlier event can still come:
    ``delay_s`` (the longest such lag) behind the newest frame, given by :meth:`advance`;
    :meth:`close` writes the rest. The JSON sinks are not delayed.
    """

    def __init__(self, out: Output, *, wall: bool, delay_s: float = 0.0) -> None:
        self.out, self.wall, self.delay_s = out, wall, delay_s
        self._pending: list[tuple[float, int, Any]] = []
        self._arrived = 0
        self._now = -math.inf

    @staticmethod
    def moment(event: Any) -> float:
        """When ``event`` happened (its line's time)."""
        return float(event.first_seen if str(event.event) == "appeared" else event.last_seen)

    def emit(self, event: Any) -> None:
        heapq.heappush(self._pending, (self.moment(event), self._arrived, event))
        self._arrived += 1
        self._release(self._now - self.delay_s)

    def advance(self, now: float) -> None:
        """The newest frame's time: events older than ``now - delay_s`` are written."""
        self._now = max(self._now, now)
        self._release(self._now - self.delay_s)

    def close(self) -> None:
        self._release(math.inf)

    def _release(self, until: float) -> None:
        while self._pending and self._pending[0][0] <= until:
            at, _, event = heapq.heappop(self._pending)
            self.out.line(self.event_text(at, event))

    def event_text(self, at: float, event: Any) -> str:
        who = event.person or ("unknown" if event.decision == "unknown" else "not yet recognised")
        sim = f" (similarity {event.similarity:.3f})" if event.similarity is not None else ""
        return f"[{clock(at, self.wall)}] {event.event:<10} #{event.track_id} {who}{sim}"


def watch_summary(frames: int, elapsed: float, stats: Any, embedded: int, dropped: int) -> str:
    fps = frames / elapsed if elapsed > 0 else 0.0
    every = stats.frames / stats.detections if stats.detections else 0.0
    return (
        f"{plural(frames, 'frame')} in {elapsed:.1f} s ({fps:.1f} fps): detection every "
        f"{every:.1f} frames, {plural(stats.tracks, 'track')}, {plural(embedded, 'face')} "
        "embedded" + (f", {dropped} stale frames dropped" if dropped else "")
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
