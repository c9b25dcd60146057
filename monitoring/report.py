"""The monitoring report: one self-contained HTML file for the people who watch the models (is
the input drifting, do the predictions still hold against realised churn, should we retrain)
and for CS leadership (did the interventions work, is uplift targeting on, the KPIs, which
agents save accounts).

Pure rendering: :func:`render_report` takes a :class:`ReportData` gathered by the monitoring
jobs and returns the document as a string; it reads and writes nothing. The file opens offline:
inline CSS, charts as inline SVG drawn with matplotlib (text kept as text, no embedded fonts),
no script and no external URL. Every text value is escaped (Jinja2 autoescape; matplotlib
escapes the text of its SVG). Sections whose producers are still changing are plain dicts read
defensively: a missing key shows as "–", a missing section as a "not available" box, and a
section that cannot be read at all as such a box naming the error, so one bad section never
takes the report down.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import PurePath
from typing import Any, Final

from jinja2 import Environment
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

MISSING: Final = "–"
# Columns the drift chart shows at most (the most drifted; the rest are counted).
MAX_DRIFT_COLUMNS: Final = 40
# The drift chart's bars relative to the threshold stop here (a p-value of 0 is infinitely far).
DRIFT_CAP: Final = 10.0
# The outcome of an intervention the forest chart and the verdict colour are read from.
PRIMARY_OUTCOME: Final = "retained_30d"
CHART_WIDTH: Final = 7.3  # inches: about 700 px in a browser (96 px per inch)
SEGMENT_TABLES: Final = (
    ("by_tier", "Subscription tier"),
    ("by_vendor_type", "Vendor type"),
    ("by_hemisphere", "Hemisphere"),
    ("by_month", "Month of the prediction"),
)
BLUE: Final = "#2b6cb0"
ORANGE: Final = "#dd6b20"
RED: Final = "#c53030"
GREEN: Final = "#2f855a"
GREY: Final = "#a0aec0"
INK: Final = "#1a202c"
# matplotlib settings while drawing: text stays text (no glyph outlines), paths simplified.
_RC: Final = {
    "svg.fonttype": "none",
    "path.simplify": True,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "legend.frameon": False,
}


class ReportData(BaseModel):
    """Everything the report shows, gathered elsewhere. Every section is optional: ``None``
    (or empty) shows "not available" with the section's ``*_unavailable`` reason.

    The section dicts are those of their producers, read by key (documented in the module of
    each producer; ``outcomes`` is ``wedsync_cs.monitor_jobs.run_outcomes``' summary, ``drift``
    the drift run's JSON summary). ``kpis`` rows are ``{name, definition, value, unit, date}``,
    several dates per name making a history.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    generated_at: datetime
    as_of: date | None = None
    models: dict[str, str] = Field(default_factory=dict)
    drift: dict[str, Any] | None = None
    drift_unavailable: str | None = None
    outcomes: dict[str, Any] | None = None
    outcomes_unavailable: str | None = None
    effects: list[dict[str, Any]] | None = None
    effects_unavailable: str | None = None
    uplift: list[dict[str, Any]] | None = None
    uplift_unavailable: str | None = None
    kpis: list[dict[str, Any]] | None = None
    kpis_unavailable: str | None = None
    agents: list[dict[str, Any]] | None = None
    agents_unavailable: str | None = None


# -- values for people ---------------------------------------------------------------------
def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (None, text, NaN, a bool)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _get(mapping: Any, *keys: str) -> Any:
    """``mapping[k1][k2]...``, None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _pct(value: Any, digits: int = 1) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:.{digits}%}"


def _fixed(value: Any, digits: int = 3) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:,.{digits}f}"


def _signed(value: Any, digits: int = 2) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:+,.{digits}f}"


def _count(value: Any) -> str:
    """Whole numbers with thousands separators; an estimate keeps one decimal."""
    number = _number(value)
    if number is None:
        return MISSING
    return f"{number:,.0f}" if number == round(number) else f"{number:,.1f}"


def _money(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:,.0f}"


def _score(value: Any) -> str:
    """A drift score: p-values can be tiny, distances are read to three decimals."""
    number = _number(value)
    if number is None:
        return MISSING
    return f"{number:.1e}" if 0 < abs(number) < 0.001 else f"{number:.3f}"


def _p_value(value: Any) -> str:
    number = _number(value)
    if number is None:
        return f"p {MISSING}"
    return "p < 0.001" if number < 0.001 else f"p = {number:.3f}"


def _text(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


def _day(value: Any) -> str:
    """ISO day of a date, a datetime or an ISO string (kept as given when not parseable)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return _text(value)


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _month(key: str) -> str:
    """``YYYY-MM`` of a period key (``YYYY-MM`` or the period's first day ``YYYY-MM-DD``)."""
    return key[:7] if re.match(r"^\d{4}-\d{2}(-\d{2})?$", key) else key


def _with_unit(value: Any, unit: Any) -> str:
    """A KPI value in its unit (``monitoring.kpis.Unit``)."""
    if _number(value) is None:
        return MISSING
    match unit:
        case "share":
            return _pct(value)
        case "count":
            return _count(value)
        case "currency":
            return _money(value)
        case "days":
            return f"{_fixed(value, 1)} days"
        case "hours":
            return f"{_fixed(value, 1)} h"
        case "score":
            return f"{_fixed(value, 1)} / 100"
        case "rating":
            return f"{_fixed(value, 2)} / 5"
        case _:
            return _fixed(value, 2)


def _plain(label: Any) -> str:
    """Text for a matplotlib label, never read as mathtext (a ``$`` in a rule name)."""
    return _text(label).replace("$", r"\$")


# -- tables for the template ---------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    text: str | Markup
    cls: str = ""


@dataclass(frozen=True)
class Row:
    cells: list[Cell]
    cls: str = ""


@dataclass(frozen=True)
class Table:
    head: list[str]
    rows: list[Row]
    caption: str = ""


def _num(text: str | Markup, cls: str = "") -> Cell:
    return Cell(text, f"num {cls}".strip())


def _two_lines(main: str, small: str) -> Markup:
    return Markup('{}<br><span class="small">{}</span>').format(main, small)


# -- charts ------------------------------------------------------------------------------------
def _figure(height: float, width: float = CHART_WIDTH) -> Any:
    """A figure not registered with pyplot: no GUI backend, nothing global to close."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(figure: Any, label: str) -> Markup:
    """The figure as an inline ``<svg>``: no XML prolog, no metadata (it holds URLs), no
    global style, no group ids (they repeat from one figure to the next)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s*<style type="text/css">.*?</style>', "", text, flags=re.S)
    text = re.sub(r'<g id="[A-Za-z][\w.]*_\d+">', "<g>", text)
    attributes = Markup(' class="chart" role="img" aria-label="{}" ').format(label)
    return Markup(text.replace("<svg ", f"<svg{attributes}", 1))


def _percent_axis(axis: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0, decimals=None))


@dataclass(frozen=True)
class ColumnDrift:
    """One column of the drift chart. ``p_value``: its method drifts below the threshold (a
    test) rather than at or above it (a distance), read from the producer's own verdict."""

    name: str
    score: float
    threshold: float | None
    drifted: bool

    @property
    def p_value(self) -> bool:
        return self.threshold is not None and self.drifted == (self.score < self.threshold)

    @property
    def strength(self) -> float:
        """How far past its threshold the column is (1 at the threshold; more is more)."""
        if not self.threshold:
            return self.score
        if self.p_value:
            return math.inf if self.score <= 0 else self.threshold / self.score
        return self.score / self.threshold


def _drift_chart(columns: list[ColumnDrift]) -> Markup:
    """Horizontal bars, most drifted at the top. All distances: the raw score with each
    column's threshold marked; with a test among them, each column's strength (distance /
    threshold or threshold / p-value, capped), so that a longer bar always means more drift."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    figure = _figure(0.9 + 0.2 * len(columns))
    axes = figure.add_subplot()
    y = list(range(len(columns)))
    colours = [RED if c.drifted else GREY for c in columns]
    handles = [Patch(color=RED, label="drifted"), Patch(color=GREY, label="not drifted")]
    if any(c.p_value for c in columns):
        axes.barh(y, [min(c.strength, DRIFT_CAP) for c in columns], color=colours, height=0.7)
        axes.axvline(1, color=INK, linewidth=1, linestyle="--")
        axes.set_xlabel(
            f"drift relative to the column's threshold (1 = threshold; capped at {DRIFT_CAP:g})"
        )
        handles.append(Line2D([], [], color=INK, linestyle="--", label="threshold"))
    else:
        axes.barh(y, [c.score for c in columns], color=colours, height=0.7)
        marked = [(c.threshold, i) for i, c in enumerate(columns) if c.threshold is not None]
        if marked:
            axes.scatter(*zip(*marked, strict=True), marker="|", s=120, color=INK, zorder=3)
            handles.append(
                Line2D([], [], color=INK, marker="|", linestyle="", label="column's threshold")
            )
        axes.set_xlabel("drift score (distance; drifted at or above the threshold)")
    axes.set_yticks(y, [_plain(c.name) for c in columns])
    axes.set_ylim(len(columns) - 0.5, -0.5)
    figure.legend(handles=handles, loc="outside upper left", ncols=len(handles))
    return _svg(figure, "drift score per column")


def _calibration_chart(curves: dict[str, list[tuple[float, float]]]) -> Markup:
    """Observed churn rate against the mean prediction per decile, one line per model, with
    the diagonal of perfect calibration."""
    figure = _figure(4.2)
    axes = figure.add_subplot()
    top = max(max(p, o) for points in curves.values() for p, o in points) * 1.08 or 1.0
    axes.plot([0, top], [0, top], color=GREY, linestyle="--", linewidth=1, label="perfect")
    for (name, points), colour in zip(curves.items(), (BLUE, ORANGE), strict=False):
        axes.plot(*zip(*points, strict=True), marker="o", color=colour, label=name)
    axes.set_xlim(0, top)
    axes.set_ylim(0, top)
    axes.set_xlabel("mean predicted churn probability (decile)")
    axes.set_ylabel("observed churn rate")
    _percent_axis(axes.xaxis)
    _percent_axis(axes.yaxis)
    axes.legend(loc="upper left")
    return _svg(figure, "calibration: predicted against observed churn per decile")


def _auc_chart(months: list[str], lines: dict[str, list[float | None]], holdout: float | None):
    """AUC per month, one line per model, the champion's holdout AUC as a dashed line."""
    figure = _figure(3.0)
    axes = figure.add_subplot()
    x = list(range(len(months)))
    for (name, values), colour in zip(lines.items(), (BLUE, ORANGE), strict=False):
        axes.plot(
            x, [math.nan if v is None else v for v in values], marker="o", color=colour, label=name
        )
    if holdout is not None:
        axes.axhline(holdout, color=INK, linestyle="--", linewidth=1, label="holdout AUC")
    axes.set_xticks(x, months, rotation=45 if len(months) > 8 else 0)
    axes.set_ylabel("AUC")
    axes.margins(x=0.05, y=0.25)
    axes.legend(loc="lower left", ncols=3)
    return _svg(figure, "AUC per month")


def _forest_chart(points: list[ForestPoint], unit: str) -> Markup:
    """Difference treated - control with its interval per rule, grouped by intervention type
    (the pooled row first, in bold): significant gains green, losses red, the rest grey."""
    from matplotlib.lines import Line2D

    figure = _figure(0.8 + 0.3 * len(points))
    axes = figure.add_subplot()
    for y, point in enumerate(points):
        colour = GREY if not point.significant else GREEN if point.difference > 0 else RED
        error = None
        if point.low is not None and point.high is not None:
            error = [
                [max(point.difference - point.low, 0)],
                [max(point.high - point.difference, 0)],
            ]
        axes.errorbar([point.difference], [y], xerr=error, fmt="o", color=colour, capsize=3)
        if y and point.kind != points[y - 1].kind:
            axes.axhline(y - 0.5, color="#e2e8f0", linewidth=1)
    axes.axvline(0, color=INK, linewidth=1)
    axes.set_yticks(range(len(points)), [_plain(f"{p.kind} · {p.rule}") for p in points])
    for label, point in zip(axes.get_yticklabels(), points, strict=True):
        label.set_fontweight("bold" if point.pooled else "normal")
    axes.set_ylim(len(points) - 0.5, -0.5)
    axes.set_xlabel(f"difference treated - control ({unit}), 95% interval")
    figure.legend(
        handles=[
            Line2D([], [], color=GREEN, marker="o", label="significant gain"),
            Line2D([], [], color=RED, marker="o", label="significant loss"),
            Line2D([], [], color=GREY, marker="o", label="not significant"),
        ],
        loc="outside upper left",
        ncols=3,
    )
    return _svg(figure, "intervention effect per rule")


def _qini_chart(title: str, fraction: list[float], model: list[float], random: list[float]):
    figure = _figure(2.8, width=4.6)
    axes = figure.add_subplot()
    axes.plot(fraction, model, color=BLUE, label="model")
    axes.plot(fraction, random, color=GREY, linestyle="--", label="random")
    axes.fill_between(fraction, model, random, color=BLUE, alpha=0.08, linewidth=0)
    axes.set_title(_plain(title))
    axes.set_xlabel("share targeted, highest predicted uplift first")
    axes.set_ylabel("incremental retained")
    _percent_axis(axes.xaxis)
    axes.legend(loc="upper left")
    return _svg(figure, f"Qini curve {title}")


def _sparkline(points: list[tuple[str, float]], unit: Any) -> Markup:
    """A small line of a KPI's history, oldest left, its newest point dotted."""
    width, height, pad = 120, 28, 3
    values = [value for _, value in points]
    low, high = min(values), max(values)
    step = (width - 2 * pad) / (len(points) - 1)

    def y(value: float) -> float:
        if high == low:
            return height / 2
        return height - pad - (value - low) / (high - low) * (height - 2 * pad)

    line = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    title = (
        f"{points[0][0]} to {points[-1][0]}: from {_with_unit(values[0], unit)} to "
        f"{_with_unit(values[-1], unit)} (lowest {_with_unit(low, unit)}, highest "
        f"{_with_unit(high, unit)})"
    )
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">'
        '<title>{t}</title><polyline fill="none" stroke="{c}" stroke-width="1.5" points="{p}"/>'
        '<circle cx="{x}" cy="{y}" r="2.2" fill="{c}"/></svg>'
    ).format(
        w=width,
        h=height,
        t=title,
        c=BLUE,
        p=line,
        x=f"{width - pad:.1f}",
        y=f"{y(values[-1]):.1f}",
    )


# -- sections --------------------------------------------------------------------------------
def _drift_alarm(drift: Any) -> bool | None:
    share, limit = _number(_get(drift, "drifted_share")), _number(_get(drift, "max_drifted_share"))
    return None if share is None or limit is None else share > limit


def _drift(drift: dict[str, Any]) -> dict[str, Any]:
    raw = drift.get("columns") or {}
    columns = [
        ColumnDrift(str(name), score, _number(_get(v, "threshold")), bool(_get(v, "drifted")))
        for name, v in raw.items()
        if (score := _number(_get(v, "score"))) is not None
    ]
    columns.sort(key=lambda c: (not c.drifted, -c.strength))
    shown = columns[:MAX_DRIFT_COLUMNS]
    table = Table(
        ["Column", "Method", "Score", "Threshold", "Drifted"],
        [
            Row(
                [
                    Cell(str(name)),
                    Cell(_text(_get(values, "method"))),
                    _num(_score(_get(values, "score"))),
                    _num(_score(_get(values, "threshold"))),
                    Cell("drifted" if _get(values, "drifted") else "no"),
                ],
                "bad" if _get(values, "drifted") else "",
            )
            for name, values in sorted(raw.items(), key=lambda kv: str(kv[0]))
        ],
    )
    prediction = drift.get("prediction")
    report = drift.get("report")
    return {
        "reference": _text(drift.get("reference")),
        "current": _text(drift.get("current")),
        "reference_rows": _count(drift.get("reference_rows")),
        "current_rows": _count(drift.get("current_rows")),
        "share": _pct(drift.get("drifted_share")),
        "threshold": _pct(drift.get("max_drifted_share")),
        "drifted_count": _count(drift.get("drifted_count")),
        "columns": len(raw),
        "monitored": len(raw) + isinstance(prediction, Mapping),
        "feature_share": _pct(drift.get("feature_drifted_share")),
        "alarm": _drift_alarm(drift),
        "prediction": None
        if not isinstance(prediction, Mapping)
        else {
            "score": _score(prediction.get("score")),
            "method": _text(prediction.get("method")),
            "threshold": _score(prediction.get("threshold")),
            "drifted": bool(prediction.get("drifted")),
        },
        "report_name": PurePath(str(report)).name if report else None,
        "chart": _drift_chart(shown) if shown else None,
        "hidden": len(columns) - len(shown),
        "unscored": len(raw) - len(columns),
        "table": table,
    }


_METRICS: Final[tuple[tuple[str, str, Callable[[Any], str]], ...]] = (
    ("n", "Predictions judged", _count),
    ("positives", "Realised churns", _count),
    ("auc", "AUC", _fixed),
    ("pr_auc", "PR-AUC", _fixed),
    ("brier", "Brier score", lambda v: _fixed(v, 4)),
    ("log_loss", "Log loss", _fixed),
    ("ece", "Expected calibration error", lambda v: _fixed(v, 4)),
)
_MODELS: Final = (("churn", "Churn model"), ("health", "Health score"))


def _segment_table(outcomes: Mapping[str, Any], key: str, title: str) -> Table | None:
    by = {model: _get(outcomes, model, key) or {} for model, _ in _MODELS}
    segments = list(dict.fromkeys([*by["churn"], *by["health"]]))
    if not segments:
        return None
    rows = []
    for segment in segments:
        churn, health = by["churn"].get(segment), by["health"].get(segment)
        either = churn if isinstance(churn, Mapping) else health
        n, positives = _number(_get(either, "n")), _number(_get(either, "positives"))
        rows.append(
            Row(
                [
                    Cell(_month(str(segment)) if key == "by_month" else str(segment)),
                    _num(_count(n)),
                    _num(_count(positives)),
                    _num(_pct(positives / n) if n and positives is not None else MISSING),
                    _num(_fixed(_get(churn, "auc"))),
                    _num(_fixed(_get(churn, "pr_auc"))),
                    _num(_fixed(_get(churn, "brier"), 4)),
                    _num(_fixed(_get(churn, "ece"), 4)),
                    _num(_fixed(_get(health, "auc"))),
                    _num(_fixed(_get(health, "brier"), 4)),
                ]
            )
        )
    head = [title, "n", "Churns", "Churn rate", "Churn AUC", "Churn PR-AUC", "Churn Brier"]
    return Table([*head, "Churn ECE", "Health AUC", "Health Brier"], rows)


def _outcomes(outcomes: dict[str, Any]) -> dict[str, Any]:
    holdout = outcomes.get("holdout") if isinstance(outcomes.get("holdout"), Mapping) else None
    overall = {model: _get(outcomes, model, "overall") or {} for model, _ in _MODELS}
    table = Table(
        ["Realised figure", "Churn model", "Health score", "Champion holdout"],
        [
            Row(
                [
                    Cell(label),
                    _num(fmt(overall["churn"].get(key))),
                    _num(fmt(overall["health"].get(key))),
                    _num(fmt(holdout.get(key)) if holdout else MISSING),
                ]
            )
            for key, label, fmt in _METRICS
        ],
    )
    curves = {}
    for model, label in _MODELS:
        points = [
            (_number(_get(b, "mean_predicted")), _number(_get(b, "observed_rate")))
            for b in overall[model].get("calibration") or []
        ]
        points = [(p, o) for p, o in points if p is not None and o is not None]
        if points:
            curves[label] = points
    months = list(
        dict.fromkeys(
            [
                *(_get(outcomes, "churn", "by_month") or {}),
                *(_get(outcomes, "health", "by_month") or {}),
            ]
        )
    )
    lines = {
        label: [_number(_get(outcomes, model, "by_month", m, "auc")) for m in months]
        for model, label in _MODELS
    }
    lines = {
        label: values for label, values in lines.items() if any(v is not None for v in values)
    }
    flags = outcomes.get("retrain_flags")
    days = outcomes.get("days") or []
    return {
        "as_of": _day(outcomes.get("as_of")),
        "horizon": _count(outcomes.get("horizon_days")),
        "first": _day(days[0]) if len(days) > 0 else MISSING,
        "last": _day(days[-1]) if len(days) > 0 else MISSING,
        "flags": None if flags is None else [str(f) for f in flags],
        "holdout": holdout is not None,
        "missing_health": _number(overall["health"].get("missing_scores")) or 0,
        "table": table,
        "calibration": _calibration_chart(curves) if curves else None,
        "auc_chart": _auc_chart(
            [_month(str(m)) for m in months], lines, _number(_get(holdout, "auc"))
        )
        if lines
        else None,
        "segments": [
            t for key, title in SEGMENT_TABLES if (t := _segment_table(outcomes, key, title))
        ],
    }


def _is_rate(name: str, result: Mapping[str, Any]) -> bool:
    """An outcome measured as a share (retained, logged in), not as a change in points: the
    producer's ``kind`` when it gives one, else read from the name and the values."""
    if result.get("kind") in ("proportion", "mean"):
        return result["kind"] == "proportion"
    if any(word in name.lower() for word in ("change", "delta", "diff")):
        return False
    values = [_number(result.get(k)) for k in ("treated", "control")]
    known = [v for v in values if v is not None]
    return bool(known) and all(0 <= v <= 1 for v in known)


def _difference(name: str, result: Mapping[str, Any], key: str = "difference") -> str:
    value = _number(result.get(key))
    if value is None:
        return MISSING
    return f"{value * 100:+.1f} pp" if _is_rate(name, result) else _signed(value)


def _effect_class(result: Any) -> str:
    """``good`` / ``bad`` for a significant gain / loss, ``ns`` for anything else."""
    difference = _number(_get(result, "difference"))
    if _get(result, "significant") is not True or difference is None or difference == 0:
        return "ns"
    return "good" if difference > 0 else "bad"


def _not_significant(result: Any) -> str:
    """What to tag a grey effect with: no difference measured is not the same as a difference
    within the noise."""
    if _get(result, "estimable") is False or _number(_get(result, "difference")) is None:
        return "not estimable"
    return "not significant"


def _with_interval(value: str, row: Mapping[str, Any], key: str, fmt: Callable[[Any], str]):
    """``value`` and, below it, the producer's ``key_ci_low`` to ``key_ci_high`` when given."""
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    if _number(low) is None or _number(high) is None:
        return value
    return _two_lines(value, f"[{fmt(low)}, {fmt(high)}]")


def _outcome_cell(name: str, result: Any) -> Cell:
    """Difference, interval, treated vs control and p-value, one short line each; grey and
    saying so when not significant."""
    if not isinstance(result, Mapping):
        return _num(MISSING)
    if _number(result.get("difference")) is None:
        tag = Markup('{}<span class="line"><span class="tag ns">{}</span></span>')
        return _num(tag.format(MISSING, _not_significant(result)), "effect ns")
    rate = _is_rate(name, result)
    low, high = (_number(result.get(k)) for k in ("ci_low", "ci_high"))
    if low is None or high is None:
        interval = ""
    elif rate:
        interval = f"[{low * 100:+.1f}, {high * 100:+.1f}]"
    else:
        interval = f"[{low:+.2f}, {high:+.2f}]"
    level = _pct if rate else (lambda v: _fixed(v, 2))
    cls = _effect_class(result)
    text = Markup(
        '<span class="line"><strong>{}</strong> <span class="small">{}</span></span>'
        '<span class="line small">{} vs {}</span><span class="line small">{}</span>'
    ).format(
        _difference(name, result),
        interval,
        level(result.get("treated")),
        level(result.get("control")),
        _p_value(result.get("p_value")),
    )
    if cls == "ns":
        text += Markup('<span class="line"><span class="tag ns">{}</span></span>').format(
            _not_significant(result)
        )
    return _num(text, f"effect {cls}")


def _rule_label(row: Mapping[str, Any]) -> str:
    rule = row.get("rule")
    return "all rules (pooled)" if rule is None else str(rule)


def _outcome_names(rows: list[Mapping[str, Any]]) -> list[str]:
    """The outcomes measured, in the order the producer gives them."""
    return list(dict.fromkeys(n for r in rows for n in (r.get("outcomes") or {})))


def _effect_tables(kind: str, rows: list[Mapping[str, Any]]) -> list[Table]:
    """One intervention type, its pooled row first then a row per rule: what it cost and
    saved, then each measured outcome against the control group (two tables, so that the
    outcomes the producer adds never push the verdict off the page)."""
    rows = sorted(rows, key=lambda r: r.get("rule") is not None)
    names = _outcome_names(rows)
    money, outcomes = [], []
    for row in rows:
        results = row.get("outcomes") or {}
        primary = results.get(PRIMARY_OUTCOME)
        verdict_class = "" if primary is None else _effect_class(primary)
        text = _text(row.get("verdict"))
        verdict = Markup("{}").format(text)
        tag = _not_significant(primary)
        if verdict_class == "ns" and tag not in text.lower():  # say it unless the verdict does
            verdict += Markup(' <span class="tag ns">{} {}</span>').format(PRIMARY_OUTCOME, tag)
        roi = _fixed(row.get("roi"), 1)
        pooled = "pooled" if row.get("rule") is None else ""
        cells = [
            Cell(_rule_label(row)),
            _num(_count(row.get("n_treated"))),
            _num(_count(row.get("n_control"))),
            _num(_pct(row.get("delivery_rate"))),
            _num(_money(row.get("cost"))),
            _num(
                _with_interval(
                    _fixed(row.get("churn_prevented_30d"), 1),
                    row,
                    "churn_prevented_30d",
                    lambda v: _fixed(v, 1),
                )
            ),
            _num(_with_interval(_money(row.get("ltv_protected")), row, "ltv_protected", _money)),
            _num(
                _with_interval(
                    roi if roi == MISSING else f"{roi}×", row, "roi", lambda v: f"{_fixed(v, 1)}×"
                )
            ),
            Cell(verdict, verdict_class),
        ]
        money.append(Row(cells, pooled))
        outcome_cells = [_outcome_cell(name, results.get(name)) for name in names]
        outcomes.append(Row([Cell(_rule_label(row)), *outcome_cells], pooled))
    head = ["Rule", "Treated", "Control", "Delivered", "Cost", "Churn prevented (30 d)"]
    tables = [Table([*head, "LTV protected", "ROI", "Verdict"], money, caption=kind)]
    if names:
        caption = f"{kind}: outcomes, treated against control"
        tables.append(Table(["Rule", *names], outcomes, caption=caption))
    return tables


@dataclass(frozen=True)
class ForestPoint:
    kind: str
    rule: str
    pooled: bool
    difference: float
    low: float | None
    high: float | None
    significant: bool


def _forest(by_type: dict[str, list[Mapping[str, Any]]], outcome: str) -> Markup | None:
    """The forest chart of ``outcome``, in percentage points when it is a share."""
    found = [
        (kind, row, result)
        for kind, rows in by_type.items()
        for row in sorted(rows, key=lambda r: r.get("rule") is not None)
        if _number(_get(result := _get(row, "outcomes", outcome), "difference")) is not None
    ]
    if not found:
        return None
    rate = all(_is_rate(outcome, result) for *_, result in found)
    scale = 100 if rate else 1

    def scaled(value: Any) -> float | None:
        number = _number(value)
        return None if number is None else number * scale

    points = [
        ForestPoint(
            kind=kind,
            rule=_rule_label(row),
            pooled=row.get("rule") is None,
            difference=_number(result["difference"]) * scale,
            low=scaled(result.get("ci_low")),
            high=scaled(result.get("ci_high")),
            significant=result.get("significant") is True,
        )
        for kind, row, result in found
    ]
    return _forest_chart(points, "percentage points" if rate else "points")


def _effects(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_type.setdefault(_text(row.get("intervention_type")), []).append(row)
    names = _outcome_names(rows)
    retained = [n for n in names if "retained" in n]
    outcome = PRIMARY_OUTCOME if PRIMARY_OUTCOME in names else (retained or names or [None])[0]
    return {
        "tables": [t for kind, members in by_type.items() for t in _effect_tables(kind, members)],
        "outcome": outcome,
        "chart": None if outcome is None else _forest(by_type, outcome),
    }


def _ranking(row: Mapping[str, Any]) -> str:
    if row.get("ranking"):
        return str(row["ranking"])
    if row.get("beats_random") is True:
        return "uplift × LTV"
    return "risk (churn probability × LTV)"


def _uplift(rows: list[dict[str, Any]]) -> dict[str, Any]:
    table_rows, charts = [], []
    for row in rows:
        kind = _text(row.get("intervention_type"))
        beats = row.get("beats_random")
        interval = f"[{_fixed(row.get('ci_low'), 3)}, {_fixed(row.get('ci_high'), 3)}]"
        table_rows.append(
            Row(
                [
                    Cell(kind),
                    _num(_count(row.get("n_train"))),
                    _num(_count(row.get("n_test"))),
                    _num(_two_lines(_fixed(row.get("qini_coefficient"), 3), interval)),
                    Cell(
                        "yes" if beats is True else "no" if beats is False else MISSING,
                        "good" if beats is True else "ns",
                    ),
                    Cell(_ranking(row)),
                    Cell(_text(row.get("reason")), "small-cell"),
                ]
            )
        )
        curve = row.get("curve") if isinstance(row.get("curve"), Mapping) else {}
        series = [
            [_number(v) for v in curve.get(k) or []] for k in ("fraction", "model", "random")
        ]
        lengths = {len(s) for s in series}
        if len(lengths) == 1 and lengths != {0} and all(v is not None for s in series for v in s):
            title = f"{kind}: Qini {_fixed(row.get('qini_coefficient'), 3)} {interval}"
            charts.append(_qini_chart(title, *series))
    return {
        "table": Table(
            [
                "Intervention type",
                "Train",
                "Test",
                "Qini [95% CI]",
                "Beats random",
                "Ranking",
                "Why",
            ],
            table_rows,
        ),
        "charts": charts,
        "on": _uplift_on(rows),
    }


def _uplift_on(rows: list[Mapping[str, Any]]) -> list[str]:
    """The intervention types ranked by uplift x LTV: their uplift model beats random."""
    return [_text(r.get("intervention_type")) for r in rows if r.get("beats_random") is True]


def _uplift_state(rows: Any) -> tuple[str, str, str]:
    if not rows:
        return "n/a", "na", "not available"
    on = _uplift_on(rows)
    if not on:
        return "off", "na", f"risk ranking for all {len(rows)} types"
    return "on", "on", f"uplift x LTV for {len(on)} of {len(rows)}: {', '.join(on)}"


def _kpis(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_name.setdefault(_text(row.get("name")), []).append(row)
    table_rows = []
    for name, history in by_name.items():
        history.sort(key=lambda r: _day(r.get("date")))
        latest = history[-1]
        unit = latest.get("unit")
        points = [
            (_day(r.get("date")), v) for r in history if (v := _number(r.get("value"))) is not None
        ]
        spark = _sparkline(points, unit) if len(points) >= 2 else ""
        table_rows.append(
            Row(
                [
                    Cell(_two_lines(name, _text(latest.get("definition")))),
                    _num(_with_unit(latest.get("value"), unit)),
                    Cell(_day(latest.get("date")), "nowrap"),
                    Cell(spark),
                ]
            )
        )
    return {"table": Table(["KPI", "Latest value", "Day", "History"], table_rows)}


def _agents(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(
        rows,
        key=lambda r: (_number(r.get("ltvImpact")) is None, -(_number(r.get("ltvImpact")) or 0)),
    )
    table_rows = []
    for row in ordered:
        basis = _text(row.get("creditBasis"))
        uncertain = "ns" if basis != "control group" else ""
        low, high = row.get("churnPreventedCiLow"), row.get("churnPreventedCiHigh")
        interval = "" if low is None and high is None else f"[{_fixed(low, 1)}, {_fixed(high, 1)}]"
        table_rows.append(
            Row(
                [
                    Cell(_two_lines(_text(row.get("name")), _text(row.get("agentId")))),
                    Cell(_day(row.get("date")), "nowrap"),
                    _num(_count(row.get("accountsManaged"))),
                    _num(_count(row.get("interactionsCompleted"))),
                    _num(_fixed(row.get("satisfaction"), 2)),
                    _num(_two_lines(_fixed(row.get("churnPrevented"), 1), interval), uncertain),
                    _num(_count(row.get("upgrades"))),
                    _num(_count(row.get("healthImprovements"))),
                    _num(_money(row.get("ltvImpact")), uncertain),
                    Cell(basis, uncertain),
                ]
            )
        )
    head = ["Agent", "Day", "Accounts", "Interactions", "Satisfaction", "Churn prevented"]
    return {
        "table": Table(
            [*head, "Upgrades", "Health improvements", "LTV impact", "Credit basis"], table_rows
        )
    }


def _section(
    name: str, build: Callable[[Any], dict[str, Any]], value: Any, reason: str | None
) -> dict[str, Any]:
    """The section's view, or ``{"na": why}`` when it is missing or cannot be read."""
    if not value:
        return {"na": reason or ("no data given" if value is None else "empty")}
    try:
        return build(value)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as error:
        log.warning("the %s section could not be rendered", name, exc_info=True)
        return {"na": f"the {name} data could not be read ({type(error).__name__}: {error})"}


def _alarms(data: ReportData) -> list[dict[str, str]]:
    alarm = _drift_alarm(data.drift)
    if data.drift is None or alarm is None:
        drift = ("n/a", "na", data.drift_unavailable or "not available")
    else:
        detail = (
            f"{_pct(data.drift.get('drifted_share'))} of columns drifted "
            f"(alarm above {_pct(data.drift.get('max_drifted_share'))})"
        )
        drift = ("ALARM", "alarm", detail) if alarm else ("ok", "ok", detail)
    flags = _get(data.outcomes, "retrain_flags")
    if not isinstance(flags, list):
        retrain = ("n/a", "na", data.outcomes_unavailable or "not available")
    elif flags:
        retrain = ("RETRAIN", "alarm", f"{len(flags)} flag(s): see Outcomes")
    elif _get(data.outcomes, "holdout") is None:
        retrain = ("not compared", "na", "no holdout figures of the champion")
    else:
        retrain = ("ok", "ok", "predictions hold against the holdout")
    uplift = _uplift_state(data.uplift)
    if not data.uplift and data.uplift_unavailable:
        uplift = (uplift[0], uplift[1], data.uplift_unavailable)
    return [
        {"label": label, "state": state, "cls": cls, "detail": detail}
        for label, (state, cls, detail) in (
            ("Input drift", drift),
            ("Retrain", retrain),
            ("Uplift targeting", uplift),
        )
    ]


SECTIONS: Final = (
    ("drift", "Input drift"),
    ("outcomes", "Predictions against realised churn"),
    ("effects", "Intervention effect"),
    ("uplift", "Uplift targeting"),
    ("kpis", "KPIs"),
    ("agents", "Agents"),
)


def render_report(data: ReportData) -> str:
    """The whole report as one HTML document (a string; the caller writes it).

    The drift section links Evidently's full report by its file name, so keep that file next
    to this one.
    """
    import matplotlib

    with matplotlib.rc_context(_RC):
        views = {
            "drift": _section("drift", _drift, data.drift, data.drift_unavailable),
            "outcomes": _section("outcomes", _outcomes, data.outcomes, data.outcomes_unavailable),
            "effects": _section("effects", _effects, data.effects, data.effects_unavailable),
            "uplift": _section("uplift", _uplift, data.uplift, data.uplift_unavailable),
            "kpis": _section("KPI", _kpis, data.kpis, data.kpis_unavailable),
            "agents": _section("agents", _agents, data.agents, data.agents_unavailable),
        }
    return _template().render(
        css=Markup(_CSS),
        generated=_instant(data.generated_at),
        as_of=_day(data.as_of) if data.as_of else MISSING,
        models=sorted(data.models.items()),
        alarms=_alarms(data),
        sections=SECTIONS,
        primary_outcome=PRIMARY_OUTCOME,
        max_drift_columns=MAX_DRIFT_COLUMNS,
        **views,
    )


def _template() -> Any:
    environment = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(_TEMPLATE)


_CSS: Final = """
*{box-sizing:border-box}
body{margin:0;background:#f7fafc;color:#1a202c;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:40px 0 10px;padding-top:12px;border-top:2px solid #e2e8f0}
h3{font-size:15px;margin:22px 0 6px}
p{margin:6px 0}
.meta{color:#4a5568}
.small{font-size:12px;color:#4a5568}
.alarms{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.alarm-box{flex:1 1 240px;border-radius:6px;padding:10px 14px;border:1px solid #e2e8f0;
border-left-width:6px}
.alarm-box strong{display:block;font-size:18px}
.alarm-box.alarm{border-left-color:#c53030;background:#fff5f5}
.alarm-box.alarm strong{color:#c53030}
.alarm-box.ok{border-left-color:#2f855a;background:#f0fff4}
.alarm-box.on{border-left-color:#2b6cb0;background:#ebf8ff}
.alarm-box.na{border-left-color:#a0aec0;background:#f7fafc}
.label{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#4a5568}
nav.toc{background:#f7fafc;border:1px solid #e2e8f0;border-radius:6px;padding:8px 16px;
display:inline-block}
nav.toc ol{margin:4px 0;padding-left:20px}
a{color:#2b6cb0}
.na-box{border:1px dashed #a0aec0;background:#f7fafc;color:#4a5568;padding:10px 14px;
border-radius:6px}
.flags{border:1px solid #c53030;background:#fff5f5;border-radius:6px;padding:10px 14px}
.flags strong{color:#c53030}
.flags ul{margin:4px 0;padding-left:20px}
.okline{color:#2f855a;font-weight:600}
.alarmline{color:#c53030;font-weight:600}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
caption{text-align:left;font-weight:600;font-size:14px;padding:6px 0;white-space:nowrap}
th,td{padding:5px 9px;border-bottom:1px solid #e2e8f0;vertical-align:top;text-align:left}
th{background:#edf2f7;font-weight:600;font-size:12px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.nowrap{white-space:nowrap}
tr.pooled td{background:#f7fafc;font-weight:600}
tr.bad td{color:#c53030}
td.good{color:#2f855a}
td.bad{color:#c53030}
td.ns{color:#718096}
td.small-cell{font-size:12px;color:#4a5568;max-width:360px}
td.effect .line{display:block;white-space:nowrap}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:9px;font-weight:500}
.tag.ns{background:#edf2f7;color:#718096}
.scroll{overflow-x:auto}
svg.chart{display:block;max-width:100%;height:auto;margin:8px 0 16px}
svg.chart *{stroke-linejoin:round;stroke-linecap:butt}
.charts{display:flex;flex-wrap:wrap;gap:8px 24px}
.charts svg.chart{max-width:470px}
svg.spark{vertical-align:middle}
details{margin:6px 0 16px}
summary{cursor:pointer;color:#2b6cb0}
"""

_TEMPLATE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WedSync customer-success monitoring report, {{ as_of }}</title>
<style>{{ css }}</style>
</head>
<body>
<main>
{% macro na(reason) %}<p class="na-box">not available: {{ reason }}</p>{% endmacro %}
{% macro table(t) %}
<div class="scroll"><table>
{% if t.caption %}<caption>{{ t.caption }}</caption>{% endif %}
{% set first = t.rows[0].cells if t.rows else [] %}
<thead><tr>
{% for h in t.head %}
<th{% if loop.index0 < first | length and "num" in first[loop.index0].cls %} class="num"
{%- endif %}>{{ h }}</th>
{% endfor %}
</tr></thead>
<tbody>
{% for row in t.rows %}
<tr{% if row.cls %} class="{{ row.cls }}"{% endif %}>
{% for c in row.cells %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}>{{ c.text }}</td>
{% endfor %}
</tr>
{% endfor %}
</tbody></table></div>
{% endmacro %}
<header>
<h1>Customer-success monitoring report</h1>
<p class="meta">Generated {{ generated }} · as of {{ as_of }} · models:
{% for name, version in models %}
{{ name }} <strong>{{ version }}</strong>{% if not loop.last %}, {% endif %}
{% else %}–{% endfor %}
</p>
<div class="alarms">
{% for a in alarms %}
<div class="alarm-box {{ a.cls }}"><span class="label">{{ a.label }}</span>
<strong>{{ a.state }}</strong><span class="small">{{ a.detail }}</span></div>
{% endfor %}
</div>
<nav class="toc"><strong>Contents</strong><ol>
{% for id, title in sections %}<li><a href="#{{ id }}">{{ title }}</a></li>
{% endfor %}</ol></nav>
</header>

<section id="drift">
<h2>1. Input drift</h2>
{% if drift.na %}{{ na(drift.na) }}{% else %}
<p>Reference <strong>{{ drift.reference }}</strong> ({{ drift.reference_rows }} rows) against
current <strong>{{ drift.current }}</strong> ({{ drift.current_rows }} rows).</p>
<p class="{{ 'alarmline' if drift.alarm else 'okline' if drift.alarm is not none else '' }}">
{{ drift.share }} of the monitored columns drifted ({{ drift.drifted_count }} of
{{ drift.monitored }}: {{ drift.columns }} features
{%- if drift.monitored > drift.columns %} and the prediction{% endif %}); the alarm is above
{{ drift.threshold }}
{%- if drift.alarm %}: ALARM{% elif drift.alarm is not none %}: no alarm{% endif %}.
<span class="small">Features alone: {{ drift.feature_share }}.</span></p>
{% if drift.prediction %}
<p>Prediction (churn probability):
{% if drift.prediction.drifted %}<strong class="alarmline">drifted</strong>
{%- else %}<span class="okline">not drifted</span>{% endif %},
{{ drift.prediction.method }} score {{ drift.prediction.score }} against threshold
{{ drift.prediction.threshold }}.</p>
{% else %}<p class="small">No prediction drift in the data.</p>{% endif %}
{% if drift.report_name %}
<p>Evidently's full report: <a href="{{ drift.report_name }}">{{ drift.report_name }}</a>
<span class="small">(keep it in the same folder as this file)</span></p>
{% endif %}
{% if drift.chart %}
<h3>Drift per column{% if drift.hidden %}: the {{ max_drift_columns }} most drifted{% endif %}
</h3>
{{ drift.chart }}
{% if drift.hidden %}
<p class="small">{{ drift.hidden }} more column(s) not shown; all are in the table below.</p>
{% endif %}
{% endif %}
{% if drift.unscored %}
<p class="small">{{ drift.unscored }} column(s) without a score.</p>
{% endif %}
<details><summary>All columns ({{ drift.columns }})</summary>{{ table(drift.table) }}</details>
{% endif %}
</section>

<section id="outcomes">
<h2>2. Predictions against realised churn</h2>
{% if outcomes.na %}{{ na(outcomes.na) }}{% else %}
<p>As of <strong>{{ outcomes.as_of }}</strong>: the predictions of {{ outcomes.first }} to
{{ outcomes.last }}, each judged on the {{ outcomes.horizon }} days that followed it.</p>
{% if outcomes.flags %}
<div class="flags"><strong>Retrain: {{ outcomes.flags | length }} flag(s)</strong><ul>
{% for f in outcomes.flags %}<li>{{ f }}</li>{% endfor %}</ul></div>
{% elif outcomes.flags is none %}<p class="small">No retrain flags in the data.</p>
{% elif not outcomes.holdout %}
<p class="small">No holdout figures of the champion: nothing compared, no retrain flag.</p>
{% else %}
<p class="okline">No retrain flag: the realised figures hold against the champion's holdout.</p>
{% endif %}
{{ table(outcomes.table) }}
{% if outcomes.missing_health %}
<p class="small">{{ outcomes.missing_health | int }} prediction(s) without a health
probability are left out of the health figures.</p>
{% endif %}
<h3>Calibration: predicted against observed churn per decile</h3>
{% if outcomes.calibration %}{{ outcomes.calibration }}
{% else %}{{ na("no calibration deciles") }}{% endif %}
<h3>AUC per month</h3>
{% if outcomes.auc_chart %}{{ outcomes.auc_chart }}
{% else %}{{ na("no month with an AUC") }}{% endif %}
<h3>Per segment</h3>
{% for t in outcomes.segments %}{{ table(t) }}{% else %}{{ na("no segment figures") }}{% endfor %}
{% endif %}
</section>

<section id="effects">
<h2>3. Intervention effect</h2>
{% if effects.na %}{{ na(effects.na) }}{% else %}
<p class="small">Treated against the held-out control group, per intervention type (its rules
pooled first) and rule; each outcome as the difference with its 95% interval, then treated vs
control and the p-value. Green: a significant gain; red: a significant loss; grey: not
significant, which is no evidence of an effect.</p>
{% for t in effects.tables %}{{ table(t) }}{% endfor %}
{% if effects.chart %}
<h3>Effect on {{ effects.outcome }} per rule</h3>
{{ effects.chart }}
{% else %}{{ na("no " ~ primary_outcome ~ " difference to chart") }}{% endif %}
{% endif %}
</section>

<section id="uplift">
<h2>4. Uplift targeting</h2>
{% if uplift.na %}{{ na(uplift.na) }}{% else %}
<p>
{% if uplift.on %}
Ranking by <strong>uplift × LTV</strong> for {{ uplift.on | join(", ") }}; the other types by
risk (churn probability × LTV).
{% else %}
Uplift targeting is <strong>off</strong>: no uplift model beats random targeting, every type is
ranked by risk (churn probability × LTV).
{% endif %}
</p>
{{ table(uplift.table) }}
{% if uplift.charts %}<div class="charts">{% for c in uplift.charts %}{{ c }}{% endfor %}</div>
{% else %}{{ na("no Qini curve") }}{% endif %}
{% endif %}
</section>

<section id="kpis">
<h2>5. KPIs</h2>
{% if kpis.na %}{{ na(kpis.na) }}{% else %}{{ table(kpis.table) }}{% endif %}
</section>

<section id="agents">
<h2>6. Agents</h2>
{% if agents.na %}{{ na(agents.na) }}{% else %}
<p class="small">Sorted by LTV impact. Grey: credit not measured against a control group.</p>
{{ table(agents.table) }}{% endif %}
</section>
</main>
</body>
</html>
"""
