"""A comparison as one self-contained HTML page: tables with their intervals drawn, verdicts in
words, learning curves, each variant's changes and what ran it.

Everything is inline (CSS and SVG drawn here; no script, no font, no network), so the file can
be mailed or attached and opened anywhere. Reads stored results only (no Keras). Each number
cell carries `data-experiment` and `data-column`, the comparisons CSV's row and column it shows.
"""

import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness import __version__, results
from harness.comparison import SCOPE_NEW, VERSUS, WORDS, frame_keys, headline, methods, scope_name
from harness.formatting import runs_needed as runs_needed_text
from harness.plots import epoch_stats
from harness.spec import TRAINING_SECTIONS

REPORTS = "reports"
DIGITS = 4  # decimals shown in the tables
VERSION_COLUMNS = [
    ("backend", "backend"),
    ("keras_version", "Keras"),
    ("backend_version", "backend version"),
    ("python_version", "Python"),
    ("numpy_version", "NumPy"),
    ("sklearn_version", "scikit-learn"),
    ("pipeline", "input pipeline"),
    ("deterministic", "deterministic"),
]
# The first table: (label, CSV metric, show its interval)
SUMMARY = [
    ("train accuracy", "train_accuracy", False),
    ("test accuracy", "test_accuracy", True),
    ("test loss", "test_loss", True),
    ("test − train loss", "gap_test_loss", True),
    ("fit seconds", "fit_seconds", True),
]
TRAIN, VAL = "#1f77b4", "#e8710a"
BASE_COLOR, OTHER_COLOR = "#c62828", "#37474f"


def path_for(root, label):
    """Where the report of a comparison labelled `label` goes."""
    return Path(root) / REPORTS / f"{label}.html"


def write(comparison, root, command=None):
    """Render `comparison` (comparison.compute's) and write it atomically; returns the path."""
    path = path_for(root, comparison.label)
    results.atomic_write(path, render(comparison, root, command))
    return path


def _e(value):
    return html.escape(str(value), quote=True)


def _finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _num(value, digits=DIGITS, sign=False):
    if not _finite(value):
        return "n/a"
    return f"{float(value):{'+' if sign else ''}.{digits}f}"


def _cell(row, column, digits=DIGITS, sign=False, extra=""):
    """A table cell showing the CSV value at (row's experiment, column)."""
    return (
        f'<td class="num" data-experiment="{_e(row["experiment"])}" data-column="{_e(column)}"{extra}>'
        f"{_num(row[column], digits, sign)}</td>"
    )


# -- SVG ------------------------------------------------------------------------------------


def _nice_ticks(low, high, count=5):
    if not (_finite(low) and _finite(high)) or high <= low:
        return [low] if _finite(low) else []
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _span(values, pad=0.05, include=()):
    finite = [float(v) for v in [*values, *include] if _finite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high == low:
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    margin = (high - low) * pad
    return low - margin, high + margin


def interval_bar(
    centre, low, high, span, width=150, height=18, zero=None, color=OTHER_COLOR, title="", outer=None
):
    """A small SVG: the interval [low, high] as a bar and the centre as a dot, on the axis `span`; `outer`
    (low, high), a wider interval (the new-data scope's), as a thin line behind it."""
    lo, hi = span
    x = lambda v: 4 + (float(v) - lo) / (hi - lo) * (width - 8)  # noqa: E731
    parts = [
        f'<svg class="bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<line x1="4" y1="{height / 2}" x2="{width - 4}" y2="{height / 2}" stroke="#e0e0e0"/>',
    ]
    if zero is not None and lo <= zero <= hi:
        parts.append(
            f'<line x1="{x(zero):.1f}" y1="1" x2="{x(zero):.1f}" y2="{height - 1}" stroke="#757575" '
            'stroke-dasharray="2,2"/>'
        )
    if outer and _finite(outer[0]) and _finite(outer[1]):
        left, right = max(lo, float(outer[0])), min(hi, float(outer[1]))
        parts.append(
            f'<line class="outer" x1="{x(left):.1f}" y1="{height / 2}" x2="{x(right):.1f}" y2="{height / 2}" '
            f'stroke="{color}" stroke-width="1.5" stroke-opacity="0.55"/>'
        )
    if _finite(low) and _finite(high):
        parts.append(
            f'<rect x="{x(low):.1f}" y="{height / 2 - 4}" width="{max(x(high) - x(low), 1.5):.1f}" '
            f'height="8" rx="2" fill="{color}" fill-opacity="0.3" stroke="{color}"/>'
        )
    if _finite(centre):
        parts.append(f'<circle cx="{x(centre):.1f}" cy="{height / 2}" r="3.5" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)


def curves_svg(history, title, width=360, height=230):
    """Learning curves of one metric pair (train and validation): mean over running seeds and the
    min-max band, for 'loss' or 'accuracy' (`title`)."""
    metric = title
    series = []
    for column, label, color in ((metric, "train", TRAIN), (f"val_{metric}", "validation", VAL)):
        table = epoch_stats(history, column)
        if not table.empty:
            series.append((label, color, table))
    left, right, top, bottom = 52, 12, 24, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [
        f'<svg class="curve" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(metric)} per epoch">'
        f"<title>{_e(metric)} per epoch: mean and min-max over seeds</title>",
        f'<text x="{left}" y="15" class="ct">{_e(metric)}</text>',
    ]
    if not series:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="ax">'
            f"no {_e(metric)} recorded</text></svg>"
        )
        return "".join(out)
    epochs = pd.concat([t["epoch"] for _, _, t in series])
    x_lo, x_hi = float(epochs.min()), float(epochs.max())
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    y_lo, y_hi = _span(pd.concat([pd.concat([t["min"], t["max"]]) for _, _, t in series]), pad=0.04)
    X = lambda v: left + (float(v) - x_lo) / (x_hi - x_lo) * plot_w  # noqa: E731
    Y = lambda v: top + (1 - (float(v) - y_lo) / (y_hi - y_lo)) * plot_h  # noqa: E731
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#bdbdbd"/>'
    )
    for tick in _nice_ticks(y_lo, y_hi):
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{Y(tick):.1f}" y2="{Y(tick):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{Y(tick) + 3:.1f}" text-anchor="end" class="ax">{tick:g}</text>'
        )
    for tick in _nice_ticks(x_lo, x_hi):
        if float(tick).is_integer():
            out.append(
                f'<text x="{X(tick):.1f}" y="{top + plot_h + 13}" text-anchor="middle" class="ax">'
                f"{int(tick)}</text>"
            )
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="ax">epoch</text>')
    for _, color, table in series:
        upper = " ".join(f"{X(e):.1f},{Y(v):.1f}" for e, v in zip(table["epoch"], table["max"]))
        lower = " ".join(f"{X(e):.1f},{Y(v):.1f}" for e, v in zip(table["epoch"][::-1], table["min"][::-1]))
        out.append(f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="0.18" stroke="none"/>')
        line = " ".join(f"{X(e):.1f},{Y(v):.1f}" for e, v in zip(table["epoch"], table["mean"]))
        out.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
    for i, (label, color, _) in enumerate(series):
        lx = left + plot_w - 170 + i * 85
        out.append(
            f'<rect x="{lx}" y="8" width="14" height="8" fill="{color}" fill-opacity="0.6"/>'
            f'<text x="{lx + 18}" y="16" class="ax">{label}</text>'
        )
    out.append("</svg>")
    return "".join(out)


# -- verdicts at a glance ------------------------------------------------------------------

MARKS = {"better": ("●", "better"), "worse": ("●", "worse"), "no evidence": ("○", "none")}


def _mark(verdict, new=False):
    """A verdict as a coloured mark and a word ('not shown' for no evidence in the new-data scope)."""
    mark, css = MARKS.get(verdict, ("·", "none"))
    word = "not shown" if new and verdict == "no evidence" else verdict
    return f'<span class="mark {css}">{mark}</span> <span class="{css}">{_e(word)}</span>'


def _verdict_table(frame):
    """Variant x metric: a coloured mark and a word per scope, the Δ and on how many draws it improved."""
    others = frame[~frame["is_baseline"]]
    new = bool(others["scope_new"].astype(bool).any())
    here = " / ".join(dict.fromkeys(scope_name(s) for s in others["scope"]))
    scopes = [here, "new data"] if new else [here]
    top = "".join(
        f'<th colspan="{len(scopes)}">{_e(WORDS[m])}{" (lower is better)" if lower else ""}</th>'
        for m, lower in VERSUS.items()
    )
    sub = "".join(f"<th>{_e(s)}</th>" for _ in VERSUS for s in scopes)
    rows = []
    for _, r in others.iterrows():
        cells = [f"<td>{_e(r['experiment'])}</td>"]
        for metric in VERSUS:
            wins, ties, losses = (r[f"{metric}_{c}"] for c in ("wins", "ties", "losses"))
            count = f"{int(wins)}/{int(wins + ties + losses)}" if _finite(wins) else ""
            count += f", {int(ties)} tied" if count and ties else ""
            cells.append(
                f'<td data-experiment="{_e(r["experiment"])}" data-column="{metric}_verdict" '
                f'title="{_e(r[f"{metric}_verdict_words"])}">{_mark(r[f"{metric}_verdict"])}'
                f"<br><small>Δ {_num(r[f'{metric}_diff'], 3, sign=True)}"
                + (f" · won {count}" if count else "")
                + "</small></td>"
            )
            if new and r["scope_new"]:
                cells.append(
                    f'<td data-experiment="{_e(r["experiment"])}" data-column="{metric}_new_verdict">'
                    f"{_mark(r[f'{metric}_new_verdict'], new=True)}</td>"
                )
            elif new:
                cells.append("<td class='none'>—</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<div class="wide"><table id="verdicts"><thead>'
        f'<tr><th rowspan="2">variant</th>{top}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


# -- the page -------------------------------------------------------------------------------

# A trailing backslash continues a CSS line without adding a newline to the page.
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;\
margin:24px auto;max-width:1320px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}\
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e0e0e0;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}p.meta{color:#616161;margin:2px 0}\
code{background:#f5f5f5;padding:1px 4px;border-radius:3px}
div.wide{overflow-x:auto}table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}\
th,td{padding:3px 6px;border-bottom:1px solid #eee;text-align:left;vertical-align:middle}
th{background:#fafafa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.baseline td{background:#fff8f8}tr.baseline td:first-child{font-weight:600}
.better{color:#1b5e20;font-weight:600}.worse{color:#b71c1c;font-weight:600}.none{color:#616161}
.mark{font-size:15px}\
p.headline{font-size:15px;background:#f1f8e9;border-left:4px solid #558b2f;padding:6px 10px}
#verdicts td{border-left:1px solid #eee}#verdicts th{text-align:center}\
td.verdict,#verdicts td{white-space:nowrap}
small.new{color:#9e9e9e}\
ul.methods{color:#424242;font-size:13px;margin:4px 0 8px}
small{color:#616161}#versions td:last-child{white-space:nowrap}\
.curves{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0 0 14px}
figcaption{font-size:12px;color:#616161}svg text.ax{font-size:10px;fill:#616161}\
svg text.ct{font-size:12px;font-weight:600;fill:#212121}
details{margin:6px 0}pre{background:#fafafa;border:1px solid #eee;padding:8px;overflow:auto;font-size:12px}
"""


def _summary_table(frame):
    spans = {
        metric: _span([*frame[f"{metric}_ci95_low"], *frame[f"{metric}_ci95_high"], *frame[f"{metric}_mean"]])
        for _, metric, drawn in SUMMARY
        if drawn
    }
    scoped = len(set(frame["scope"])) > 1  # a suite that mixes fixed and varying splits names each row's
    head = ["#"] if "rank" in frame else []
    head += ["experiment", "n", *(["scope"] if scoped else []), "diagnosis"]
    for label, _, drawn in SUMMARY:
        head += [f"{label} mean [95% CI]", ""] if drawn else [f"{label} mean"]
    head += ["epochs"]
    rows = []
    for _, r in frame.iterrows():
        is_base = bool(r["is_baseline"])
        cells = [f'<td class="num">{int(r["rank"])}</td>'] if "rank" in frame else []
        cells += [f"<td>{_e(r['experiment'])}{' (baseline)' if is_base else ''}</td>", _cell(r, "runs", 0)]
        if scoped:
            where = f'data-experiment="{_e(r["experiment"])}" data-column="scope"'
            cells.append(f"<td {where}>{_e(r['scope'])}</td>")
        cells.append(f"<td>{_e(r['diagnosis'])}</td>")
        for label, metric, drawn in SUMMARY:
            digits = 2 if metric == "fit_seconds" else DIGITS
            if not drawn:
                cells.append(_cell(r, f"{metric}_mean", digits))
                continue
            new = f"{metric}_new_ci95_low" in r and _finite(r[f"{metric}_new_ci95_low"])
            cells.append(
                f"<td class='num'>{_cell_text(r, f'{metric}_mean', digits)}<br><small>"
                f"[{_cell_text(r, f'{metric}_ci95_low', digits)}, "
                f"{_cell_text(r, f'{metric}_ci95_high', digits)}]</small>"
                + (
                    f"<br><small class='new'>new data [{_cell_text(r, f'{metric}_new_ci95_low', digits)}, "
                    f"{_cell_text(r, f'{metric}_new_ci95_high', digits)}]</small>"
                    if new
                    else ""
                )
                + "</td>"
            )
            title = f"{r['experiment']}: {label} {_num(r[f'{metric}_mean'], digits)}"
            cells.append(
                "<td>"
                + interval_bar(
                    r[f"{metric}_mean"],
                    r[f"{metric}_ci95_low"],
                    r[f"{metric}_ci95_high"],
                    spans[metric],
                    width=100,
                    color=BASE_COLOR if is_base else OTHER_COLOR,
                    title=title,
                )
                + "</td>"
            )
        cells.append(_cell(r, "epochs_run_mean", 1))
        rows.append(f'<tr class="{"baseline" if is_base else ""}">{"".join(cells)}</tr>')
    return _table(head, rows, "summary")


def _cell_text(row, column, digits):
    return (
        f'<span data-experiment="{_e(row["experiment"])}" data-column="{_e(column)}">'
        f"{_num(row[column], digits)}</span>"
    )


def _table(head, rows, css_id):
    return (
        f'<div class="wide"><table id="{css_id}"><thead><tr>'
        f"{''.join(f'<th>{_e(h)}</th>' for h in head)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _differences_table(frame):
    others = frame[~frame["is_baseline"]]
    if others.empty:
        return "<p>Only one experiment: nothing to compare with.</p>"
    new = bool(others["scope_new"].astype(bool).any())
    rows = []
    for metric, lower_is_better in VERSUS.items():
        span = _span(
            [
                *others[f"{metric}_diff_ci95_low"],
                *others[f"{metric}_diff_ci95_high"],
                *(others[f"{metric}_diff_new_ci95_low"] if new else []),
                *(others[f"{metric}_diff_new_ci95_high"] if new else []),
                *others[f"{metric}_diff"],
            ],
            include=[0.0],
        )
        for i, (_, r) in enumerate(others.iterrows()):
            verdict = r[f"{metric}_verdict"]
            color = {"better": "#2e7d32", "worse": "#c62828"}.get(verdict, OTHER_COLOR)
            has_new = new and bool(r["scope_new"])
            lower = " (lower is better)" if lower_is_better else ""
            cells = [
                f"<td rowspan='{len(others)}'>{_e(WORDS[metric])}{lower}</td>" if i == 0 else "",
                f"<td>{_e(r['experiment'])}</td>",
                _cell(r, f"{metric}_diff", 3, sign=True),
                "<td>"
                + interval_bar(
                    r[f"{metric}_diff"],
                    r[f"{metric}_diff_ci95_low"],
                    r[f"{metric}_diff_ci95_high"],
                    span,
                    zero=0.0,
                    color=color,
                    title=f"{r['experiment']}: difference in {WORDS[metric]}",
                    outer=(
                        (r[f"{metric}_diff_new_ci95_low"], r[f"{metric}_diff_new_ci95_high"])
                        if has_new
                        else None
                    ),
                )
                + "</td>",
                _interval_cell(r, f"{metric}_diff"),
                _p_cell(r, f"{metric}_p_adjusted"),
                f"<td class='verdict'>{_mark(verdict)}</td>",
                _needed_cell(r, f"{metric}_runs_needed"),
            ]
            if has_new:
                cells += [
                    _interval_cell(r, f"{metric}_diff_new"),
                    _p_cell(r, f"{metric}_new_p_adjusted"),
                    f"<td class='verdict'>{_mark(r[f'{metric}_new_verdict'], new=True)}</td>",
                    _needed_cell(r, f"{metric}_new_runs_needed"),
                ]
            elif new:
                cells += ["<td class='none'>—</td>"] * 4
            cells.append(_improved_cell(r, metric))
            rows.append(f"<tr>{''.join(cells)}</tr>")
    here = " / ".join(dict.fromkeys(scope_name(s) for s in others["scope"]))
    head = ["metric", "experiment", "Δ", "interval (dashed: 0)", f"{here}: 95% CI", "p Holm", "verdict"]
    head += ["runs needed"]
    if new:
        head += [f"{SCOPE_NEW}: 95% CI", "p Holm", "verdict", "runs needed"]
    head += ["improved on"]
    return _table(head, rows, "differences")


def _interval_cell(row, prefix):
    """'[low, high]' of the CSV columns <prefix>_ci95_low and _high, signed."""
    return (
        f"<td class='num'>[{_signed_text(row, f'{prefix}_ci95_low')}, "
        f"{_signed_text(row, f'{prefix}_ci95_high')}]</td>"
    )


def _p_cell(row, column):
    """A p-value to 4 decimals, '<0.0001' below that."""
    value = row[column]
    text = "n/a" if not _finite(value) else "<0.0001" if float(value) < 0.0001 else f"{float(value):.4f}"
    return f'<td class="num" data-experiment="{_e(row["experiment"])}" data-column="{_e(column)}">{text}</td>'


def _needed_cell(row, column):
    return (
        f'<td class="num" data-experiment="{_e(row["experiment"])}" data-column="{_e(column)}">'
        f"{runs_needed_text(row[column])}</td>"
    )


def _improved_cell(row, metric):
    """'19/20 (P 0.95 [0.76, 0.99])': the draws the variant won, and the probability of improvement."""
    wins, ties, losses = (row[f"{metric}_{c}"] for c in ("wins", "ties", "losses"))
    if not _finite(row[f"{metric}_prob_improvement"]):
        return "<td>—</td>"
    tied = f", {int(ties)} tied" if ties else ""
    return (
        f"<td class='num'>{int(wins)}/{int(wins + ties + losses)}{tied}<br><small>P "
        f"{_cell_text(row, f'{metric}_prob_improvement', 2)} "
        f"[{_cell_text(row, f'{metric}_prob_improvement_ci95_low', 2)}, "
        f"{_cell_text(row, f'{metric}_prob_improvement_ci95_high', 2)}]</small></td>"
    )


def _signed_text(row, column, digits=3):
    return (
        f'<span data-experiment="{_e(row["experiment"])}" data-column="{_e(column)}">'
        f"{_num(row[column], digits, sign=True)}</span>"
    )


def flatten(value, prefix=""):
    """{dotted.path: leaf value} of a spec section (lists by index), as overrides name fields."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or ({prefix: {}} if prefix else {})
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{i}" if prefix else str(i)))
        return out or ({prefix: []} if prefix else {})
    return {prefix: value}


def spec_changes(spec, base_spec):
    """[(path, base value, this value)] over the training sections where `spec` differs from its base."""
    mine = flatten({k: spec.get(k) for k in TRAINING_SECTIONS})
    theirs = flatten({k: base_spec.get(k) for k in TRAINING_SECTIONS})
    missing = object()
    return [
        (path, theirs.get(path, missing), mine.get(path, missing))
        for path in sorted(set(mine) | set(theirs), key=lambda p: (p not in theirs, p))
        if theirs.get(path, missing) != mine.get(path, missing)
    ]


def _json(value):
    return (
        "(absent)"
        if not isinstance(value, (str, int, float, bool, type(None), list, dict))
        else json.dumps(value)
    )


def _variants(stored, root):
    parts = []
    for s in stored:
        base = s.spec.get("base")
        if not base:
            continue
        base_spec = results.stored_spec(root, base) or next((t.spec for t in stored if t.name == base), None)
        if base_spec:
            changes = spec_changes(s.spec, base_spec)
            rows = [
                f"<tr><td><code>{_e(p)}</code></td><td>{_e(_json(a))}</td><td>{_e(_json(b))}</td></tr>"
                for p, a, b in changes
            ] or [
                "<tr><td colspan='3'>no difference in what is trained (data, model, compile, fit)</td></tr>"
            ]
            head = ["field", f"{base} (base)", s.name]
        else:  # the base was never stored: its overrides as written
            rows = [
                f"<tr><td><code>{_e(p)}</code></td><td>(base not stored)</td><td>{_e(_json(v))}</td></tr>"
                for p, v in (s.spec.get("overrides") or {}).items()
            ]
            head = ["field", f"{base} (base)", s.name]
        parts.append(f"<h3>{_e(s.name)} = {_e(base)} with</h3>" + _table(head, rows, f"variant-{len(parts)}"))
    return "".join(parts) or "<p>No compared experiment is a variant of another.</p>"


def _ran_with(stored):
    head = ["experiment", "spec hash", "seeds", *[label for _, label in VERSION_COLUMNS], "finished"]
    rows = []
    for s in stored:
        seeds = " ".join(str(int(x)) for x in dict.fromkeys(s.runs["seed"]))
        if "fold" in s.runs and s.runs["fold"].notna().any():  # cv: every seed on each fold
            seeds += f" x {s.runs['fold'].nunique()} folds"
        cells = [s.name, s.spec_hash, seeds]
        for column, _ in VERSION_COLUMNS:
            values = s.runs[column].dropna().astype(str).unique() if column in s.runs else []
            cells.append(", ".join(values) if len(values) else "—")
        done = s.runs["finished_at"].dropna().astype(str) if "finished_at" in s.runs else pd.Series(dtype=str)
        first, last = (
            (done.min()[:16].replace("T", " "), done.max()[:16].replace("T", " ")) if len(done) else ("", "")
        )
        if first != last and first[:10] == last[:10]:
            last = last[11:]  # the same day: its time only
        cells.append("—" if not len(done) else first if first == last else f"{first} to {last}")
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return _table(head, rows, "versions")


def _curves(stored, baseline):
    parts = []
    for s in stored:
        seeds = s.history["seed"].nunique() if "seed" in s.history else 0
        keys = results.run_keys(s.history) if "seed" in s.history else []
        runs = len(s.history[keys].drop_duplicates()) if keys else 0
        which = f"{runs} (seed, fold) run(s)" if runs != seeds else f"{seeds} seed(s)"
        parts.append(
            f"<figure><h3>{_e(s.name)}{' (baseline)' if s.name == baseline else ''}</h3>"
            f'<div class="curves">{curves_svg(s.history, "loss")}{curves_svg(s.history, "accuracy")}</div>'
            f"<figcaption>mean over the {which} still running at each epoch (line) and their "
            "lowest to highest value (band)</figcaption></figure>"
        )
    return "".join(parts)


def render(comparison, root, command=None):
    """The report page of a comparison.compute result, as a string."""
    frame, baseline, stored = comparison.table, comparison.baseline, comparison.stored
    order = {name: i for i, name in enumerate(frame["experiment"])}
    stored = sorted(stored, key=lambda s: order.get(s.name, len(order)))
    pairing = "(seed, fold)" if "fold" in frame_keys(stored) else "seed"
    effect = "the observed size" if comparison.min_effect is None else f"{comparison.min_effect:g}"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    compared = len(frame) > 1 and "rank" not in frame
    never = (
        " Runs needed for new data is often 'never': the corrected error never falls below "
        "sd·sqrt(n_test/n_train), as more seeds re-split the same data; only more data per run narrows it."
        if frame["scope_new"].astype(bool).any()
        else ""
    )
    body = [
        f"<h1>{_e(comparison.label)}</h1>",
        f"<p class='meta'>{len(frame)} experiment(s) compared with <b>{_e(baseline)}</b> (the baseline); "
        f"written {now} by harness {__version__} from the runs stored in <code>{_e(root)}</code>.</p>",
        f"<p class='meta'>Remake it: <code>{_e(command)}</code></p>" if command else "",
        f"<p class='headline'>{_e(headline(frame))}</p>" if compared else "",
        "<p class='meta'>Intervals (95%):</p><ul class='methods'>"
        + "".join(f"<li>{_e(line)}</li>" for line in methods(frame))
        + "</ul>",
        "<h2>Verdicts</h2>",
        f"<p>Each variant against the baseline, paired by {pairing}, per metric and scope: "
        "<span class='mark better'>●</span> better, <span class='mark worse'>●</span> worse, "
        "<span class='mark none'>○</span> no evidence either way (not a win), on Holm-adjusted p < 0.05. "
        "Δ: the mean difference; won: the draws on which the variant beat the baseline.</p>",
        _verdict_table(frame) if compared else "<p>Only one experiment: nothing to compare with.</p>",
        "".join(f"<p class='meta'>note: {_e(n)}</p>" for n in comparison.notes),
        "<h2>Experiments over runs</h2>",
        "<p>Mean and 95% interval over runs (the scope above; the new-data one below it in grey where the "
        "split varies); the bars share one axis per column.</p>",
        _summary_table(frame),
        "<h2>Differences from the baseline</h2>",
        f"<p>Δ = experiment − {_e(baseline)} on the runs both have. The bar is the first scope's interval, "
        "the thin line behind it the new-data one; dashed: no difference. Runs needed (only for 'no "
        "evidence'): "
        f"about how many independent draws would settle a difference of {effect} with 80% power.{never}</p>",
        _differences_table(frame),
        "<h2>Learning curves</h2>",
        _curves(stored, baseline),
        "<h2>What each variant changes</h2>",
        _variants(stored, root),
        "<h2>What ran it</h2>",
        _ran_with(stored),
        "<details><summary>The specs (spec.json)</summary>",
        "".join(f"<h3>{_e(s.name)}</h3><pre>{_e(json.dumps(s.spec, indent=2))}</pre>" for s in stored),
        "</details>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{_e(comparison.label)}: harness report</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
