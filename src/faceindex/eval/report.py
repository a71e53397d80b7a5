"""Evaluation reports: PNG plots for people, one self-contained HTML page, JSON for machines.

Why this shape: a report is passed around (mailed, attached to an issue, archived with a
release), so the HTML embeds its images as base64 data URIs and references nothing
outside itself: no scripts, styles or fonts from the network. The same figures are
written as PNG files for slides and the JSON of ``result.to_json()`` for tools.

matplotlib is imported inside the plotting functions only, and through its
object-oriented API with the Agg canvas (never ``pyplot``), so importing faceindex costs
nothing and a report never changes the caller's matplotlib backend or global state.
PNG metadata is left out, so a report is byte-for-byte repeatable.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faceindex.eval.groups import GROUPING_TITLES, EstimatedGroups, GroupBreakdown
from faceindex.eval.identification import IdentificationMetrics
from faceindex.eval.protocols import GalleryResult, PairsResult
from faceindex.eval.verification import VerificationMetrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

Result = PairsResult | GalleryResult
_GENUINE, _IMPOSTOR, _ACCENT = "#1f77b4", "#d62728", "#2ca02c"


def _figure(ncols: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * ncols, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    return fig, axes


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _floor(values: np.ndarray, n: int) -> np.ndarray:
    """Rates of 0 cannot sit on a log axis: drawn at half of the smallest measurable one."""
    floored: np.ndarray = np.maximum(values, 0.5 / max(n, 1))
    return floored


def plot_roc(v: VerificationMetrics) -> bytes:
    fig, (ax,) = _figure()
    fmr = _floor(v.roc.fmr, v.n_impostor)
    ax.step(fmr, v.roc.tar, where="post", color=_GENUINE, label=f"AUC {v.auc:.4f}")
    for p in v.tar_at_far:
        if p.measurable:
            ax.axvline(p.far, color="grey", ls=":", lw=1)
            ax.plot([p.far], [p.tar], "o", color=_ACCENT)
            ax.annotate(f"{p.tar:.3f}", (p.far, p.tar), textcoords="offset points", xytext=(4, -12))
    ax.set_xscale("log")
    ax.set_xlim(0.5 / max(v.n_impostor, 1), 1.0)
    ax.set_xlabel(f"FMR (false match rate; 0 drawn at {0.5 / max(v.n_impostor, 1):.0e})")
    ax.set_ylabel("TAR (1 - FNMR)")
    ax.set_title("ROC")
    ax.legend(loc="lower right")
    return _png(fig)


def plot_det(v: VerificationMetrics) -> bytes:
    fig, (ax,) = _figure()
    fmr = _floor(v.roc.fmr, v.n_impostor)
    fnmr = _floor(v.roc.fnmr, v.n_genuine)
    ax.step(fmr, fnmr, where="post", color=_IMPOSTOR)
    ax.plot([v.eer], [v.eer], "o", color=_ACCENT, label=f"EER {v.eer:.4f}")
    ax.plot([v.fmr], [v.fnmr], "s", color="black", label=f"threshold {v.threshold:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FMR")
    ax.set_ylabel("FNMR")
    ax.set_title("DET (log axes; zero rates drawn at half a count)")
    ax.legend(loc="upper right")
    return _png(fig)


def plot_scores(v: VerificationMetrics) -> bytes:
    fig, (ax,) = _figure()
    gen = v.genuine_scores[np.isfinite(v.genuine_scores)]
    imp = v.impostor_scores[np.isfinite(v.impostor_scores)]
    both = np.concatenate([gen, imp])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    bins = [float(b) for b in np.linspace(lo, hi, 50)]
    n_gen_fail = v.n_genuine - gen.size
    n_imp_fail = v.n_impostor - imp.size
    ax.hist(
        imp,
        bins=bins,
        density=True,
        alpha=0.5,
        color=_IMPOSTOR,
        label=f"impostor ({imp.size}; {n_imp_fail} failed)",
    )
    ax.hist(
        gen,
        bins=bins,
        density=True,
        alpha=0.5,
        color=_GENUINE,
        label=f"genuine ({gen.size}; {n_gen_fail} failed)",
    )
    ax.axvline(v.threshold, color="black", lw=1.5, label=f"threshold {v.threshold:.3f}")
    if np.isfinite(v.recommended_threshold):
        ax.axvline(
            v.recommended_threshold,
            color=_ACCENT,
            ls="--",
            lw=1.5,
            label=f"FMR {v.target_fmr:g}: {v.recommended_threshold:.3f}",
        )
    ax.set_xlabel("similarity")
    ax.set_ylabel("density")
    ax.set_title("Scores: genuine vs impostor")
    ax.legend(loc="upper left", fontsize="small")
    return _png(fig)


def plot_groups(g: GroupBreakdown) -> bytes:
    fig, axes = _figure(2)
    names = [r.group for r in g.groups]
    x = np.arange(len(names))
    for ax, label, rates, counts, disp in (
        (
            axes[0],
            g.names[0],
            [r.fmr for r in g.groups],
            [r.n_impostor for r in g.groups],
            g.fmr_disparity,
        ),
        (
            axes[1],
            g.names[1],
            [r.fnmr for r in g.groups],
            [r.n_genuine for r in g.groups],
            g.fnmr_disparity,
        ),
    ):
        heights = [0.0 if r is None else r for r in rates]
        bars = ax.bar(x, heights, color=_IMPOSTOR if ax is axes[0] else _GENUINE)
        for bar, rate, n in zip(bars, rates, counts, strict=True):
            text = "n/a" if rate is None else f"{rate:.4f}\nn={n}"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize="small",
            )
        ratio = "n/a" if disp.ratio is None else f"{disp.ratio:.2f}"
        ax.set_title(f"{label} per group (worst/best {ratio})")
        ax.set_xticks(x, names)
        ax.set_ylabel(label)
        ax.margins(y=0.25)
    fig.suptitle(f"at threshold {g.threshold:.3f}")
    return _png(fig)


def plot_cmc(m: IdentificationMetrics) -> bytes:
    fig, (ax,) = _figure()
    ranks = np.arange(1, m.cmc.size + 1)
    ax.plot(ranks, m.cmc, "o-", color=_GENUINE)
    ax.set_xticks(ranks)
    ax.set_ylim(min(0.9, float(m.cmc.min())) - 0.02 if m.cmc.size else 0.0, 1.01)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.set_title(
        f"CMC ({plural(m.n_mated, 'mated probe')}, {plural(m.n_people, 'person', 'people')})"
    )
    return _png(fig)


def plot_open_set(m: IdentificationMetrics) -> bytes:
    assert m.curve is not None  # only called with a curve
    c = m.curve
    fig, (left, right) = _figure(2)
    fpir = _floor(c.fpir, m.n_nonmated)
    left.step(fpir, c.fnir, where="post", color=_IMPOSTOR)
    t = m.at_target
    if t is not None and t.fnir is not None:
        fnir = t.fnir
        left.plot(
            [max(t.fpir, 0.5 / m.n_nonmated)],
            [fnir],
            "o",
            color=_ACCENT,
            label=f"FPIR {t.target_fpir:g}: FNIR {fnir:.4f}",
        )
        left.legend(loc="upper right")
    left.set_xscale("log")
    left.set_xlabel("FPIR")
    left.set_ylabel("FNIR")
    left.set_title(f"Open set, margin {c.margin:g}")
    finite = np.isfinite(c.thresholds)
    right.step(c.thresholds[finite], c.fpir[finite], where="post", color=_IMPOSTOR, label="FPIR")
    right.step(c.thresholds[finite], c.fnir[finite], where="post", color=_GENUINE, label="FNIR")
    right.axvline(m.at_threshold.threshold, color="black", lw=1.5, label="threshold")
    right.set_xlabel("threshold")
    right.set_ylabel("rate")
    right.set_title("Rates vs threshold")
    right.legend(loc="center left")
    return _png(fig)


def _plots(result: Result) -> list[tuple[str, str, Callable[[], bytes]]]:
    """(file name, caption, drawing function) for every figure the result supports."""
    plots: list[tuple[str, str, Callable[[], bytes]]] = []
    v = result.verification
    if isinstance(result, GalleryResult):
        m = result.identification
        if m.cmc.size:
            plots.append(("cmc.png", "Closed-set CMC of mated probes", lambda: plot_cmc(m)))
        if m.curve is not None:
            plots.append(("open_set.png", "Open-set FNIR vs FPIR", lambda: plot_open_set(m)))
    if v is not None:
        plots += [
            ("roc.png", "ROC", lambda: plot_roc(v)),
            ("det.png", "DET", lambda: plot_det(v)),
            ("scores.png", "Score distributions", lambda: plot_scores(v)),
        ]
    for name, by, g in _breakdowns(result):
        caption = f"Per-group {g.names[0]}/{g.names[1]}{by}"
        plots.append((name, caption, functools.partial(plot_groups, g)))
    return plots


def _breakdowns(result: Result) -> list[tuple[str, str, GroupBreakdown]]:
    """(file name, " by <grouping>" or "", breakdown) of every per-group figure."""
    estimated = result.estimated_groups
    by = "" if estimated is None else f" by {_title(estimated.groupings[0])}"
    out = []
    if result.groups is not None and result.groups.groups:
        out.append(("groups.png", by, result.groups))
    if isinstance(result, GalleryResult):
        g = result.open_set_groups
        if g is not None and g.groups:
            out.append(("groups_open_set.png", by, g))
    for more in result.more_groups:
        for suffix, b in (("", more.verification), ("_open_set", more.open_set)):
            if b is not None and b.groups:
                out.append((f"groups_{more.name}{suffix}.png", f" by {_title(more.name)}", b))
    return out


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 person``, ``2 people``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if np.isnan(value):
        return "not measurable"
    if not np.isfinite(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}f}"


def _table(rows: Sequence[Sequence[object]], header: Sequence[str] | None = None) -> str:
    head = ""
    if header:
        head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table>{head}{body}</table>"


def _summary(result: Result) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("model", str(result.model_id))]
    if isinstance(result, PairsResult):
        rows += [
            ("pairs", str(result.n_pairs)),
            ("photos", str(result.n_photos)),
            ("photos without a face", str(len(result.failed_photos))),
            ("pairs scored -inf (failures)", str(result.n_failed_pairs)),
        ]
    else:
        s, m = result.split, result.identification
        rows += [
            ("split", f"seed {s.seed}, up to {s.enrol_per_person} enrolment photos per person"),
            ("enrolled people", f"{len(s.enrolled)}: {', '.join(s.enrolled)}"),
            ("unknown people", f"{len(s.unknown)}: {', '.join(s.unknown)}"),
            ("rule, margin", f"{result.rule}, {result.margin:g}"),
            ("mated / non-mated probes", f"{m.n_mated} / {m.n_nonmated}"),
            (
                "failures (enrol / probe)",
                f"{len(result.failed_enrol)} / {len(result.failed_probes)}",
            ),
            ("rank-1 identification rate", _fmt(m.rank1)),
            (f"FPIR at threshold {m.at_threshold.threshold:.3f}", _fmt(m.at_threshold.fpir)),
            (f"FNIR at threshold {m.at_threshold.threshold:.3f}", _fmt(m.at_threshold.fnir)),
            ("misidentification rate", _fmt(m.at_threshold.misidentification_rate)),
            ("ambiguous (margin) rate", _fmt(m.at_threshold.ambiguous_rate)),
        ]
        if m.at_target is not None:
            t = m.at_target
            note = "" if t.resolved else f" (too few non-mated probes to measure {t.target_fpir:g})"
            rows += [
                (f"FNIR at FPIR {t.target_fpir:g}", _fmt(t.fnir) + note),
                (f"threshold for FPIR {t.target_fpir:g}", _fmt(t.threshold, 3)),
            ]
    v = result.verification
    if v is not None:
        rows += [
            ("genuine / impostor trials", f"{v.n_genuine} / {v.n_impostor}"),
            ("AUC", _fmt(v.auc)),
            ("EER (threshold)", f"{_fmt(v.eer)} ({_fmt(v.eer_threshold, 3)})"),
        ]
        for p in v.tar_at_far:
            note = "" if p.measurable else " (FAR below 1/impostors: not measurable)"
            rows.append((f"TAR at FAR {p.far:g}", _fmt(p.tar) + note))
        rows += [
            (f"FMR / FNMR at threshold {v.threshold:.3f}", f"{_fmt(v.fmr)} / {_fmt(v.fnmr)}"),
            (f"recommended threshold for FMR {v.target_fmr:g}", _fmt(v.recommended_threshold, 3)),
        ]
    return rows


_COUNTS = {"FPIR": "non-mated probes", "FNIR": "mated probes"}


def _groups_html(g: GroupBreakdown, title: str) -> str:
    rows = [(r.group, r.n_impostor, _fmt(r.fmr), r.n_genuine, _fmt(r.fnmr)) for r in g.groups]
    a, b = g.names
    header = ["group", _COUNTS.get(a, "impostor trials"), a, _COUNTS.get(b, "genuine trials"), b]
    notes = "".join(
        f"<p>{html.escape(d.rate)}: worst {html.escape(str(d.worst_group))}, best "
        f"{html.escape(str(d.best_group))}, ratio {_fmt(d.ratio, 2)}: {html.escape(d.note)}</p>"
        for d in (g.fmr_disparity, g.fnmr_disparity)
    )
    return (
        f"<h2>{html.escape(title)} (threshold {g.threshold:.3f})</h2>"
        + _table(rows, header)
        + notes
        + f"<p>{g.n_excluded} trials belong to no group (cross-group or unlabelled).</p>"
    )


def _title(grouping: str) -> str:
    return GROUPING_TITLES.get(grouping, grouping)


def _estimated_html(e: EstimatedGroups) -> str:
    """The warning that the groups were estimated, their sizes and the undecided."""
    unit = "people" if e.unit == "person" else "photos"
    how = (
        f"per person, from the subject faces of up to {e.faces_per_person} photos each"
        if e.unit == "person"
        else "per photo (two photos of one person may fall in different groups)"
    )
    rows = []
    for name in e.groupings:
        undecided = e.undecided(name)
        shown = ", ".join(undecided[:50]) + (
            f" and {len(undecided) - 50} more" if len(undecided) > 50 else ""
        )
        counts = ", ".join(f"{g}: {n}" for g, n in e.counts(name).items())
        rows.append((_title(name), counts, f"{len(undecided)} {unit}: {shown or '-'}"))
    return (
        "<h2>Groups: ESTIMATED, not labels</h2>"
        f"<p><strong>{html.escape(e.caveat)}</strong></p>"
        f"<p>Estimated {html.escape(how)}.</p>"
        + _table(rows, ["grouping", f"{unit} per group", "undecided (left out)"])
    )


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
th { background: #f4f4f4; }
figure { display: inline-block; margin: 0.5em; }
img { max-width: 100%; border: 1px solid #eee; }
figcaption { text-align: center; color: #555; }
"""


def render_html(result: Result, images: Sequence[tuple[str, str, bytes]]) -> str:
    """One self-contained page: summary tables and figures as data URIs."""
    kind = "Verification on pairs" if isinstance(result, PairsResult) else "Gallery search"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>faceindex evaluation: {html.escape(kind)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>faceindex evaluation: {html.escape(kind)}</h1>",
        f"<p>Source: <code>{html.escape(result.source)}</code></p>",
        _table(_summary(result), ["measure", "value"]),
    ]
    estimated = result.estimated_groups
    if estimated is not None:
        parts.append(_estimated_html(estimated))
    main = "" if estimated is None else f" by {_title(estimated.groupings[0])}"
    if result.groups is not None:
        parts.append(_groups_html(result.groups, f"Per-group error rates{main}"))
    if isinstance(result, GalleryResult) and result.open_set_groups is not None:
        parts.append(_groups_html(result.open_set_groups, f"Per-group open-set rates{main}"))
    for more in result.more_groups:
        if more.verification is not None:
            parts.append(
                _groups_html(more.verification, f"Per-group error rates by {_title(more.name)}")
            )
        if more.open_set is not None:
            parts.append(
                _groups_html(more.open_set, f"Per-group open-set rates by {_title(more.name)}")
            )
    parts.append("<h2>Figures</h2>")
    for _, caption, data in images:
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        cap = html.escape(caption)
        parts.append(
            f'<figure><img src="{uri}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
        )
    failed = (
        result.failed_photos
        if isinstance(result, PairsResult)
        else result.failed_enrol + result.failed_probes
    )
    if failed:
        shown = ", ".join(failed[:50]) + (
            f" and {len(failed) - 50} more" if len(failed) > 50 else ""
        )
        parts.append(f"<h2>Photos without a face</h2><p>{html.escape(shown)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: Result, out_dir: str | Path) -> list[Path]:
    """Write the PNG figures, ``report.html`` and ``report.json`` into ``out_dir``.

    Returns the paths written, figures first. Existing files of the same names are
    replaced; nothing else in the folder is touched.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images: list[tuple[str, str, bytes]] = []
    for name, caption, draw in _plots(result):
        data = draw()
        path = out / name
        path.write_bytes(data)
        images.append((name, caption, data))
        written.append(path)
    html_path = out / "report.html"
    html_path.write_text(render_html(result, images), encoding="utf-8")
    json_path = out / "report.json"
    json_path.write_text(result.to_json() + "\n", encoding="utf-8")
    written += [html_path, json_path]
    log.info("wrote %d report files to %s", len(written), out)
    return written
