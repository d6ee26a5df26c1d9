"""PNG figures of stored runs: per-experiment learning curves over seeds, and a comparison of experiments.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global backend
switch), and written atomically like every other results file.
"""

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness import results

BASELINE_COLOR = "tab:red"


def epoch_stats(history, column):
    """Per epoch over the seeds still running: mean, min, max and how many seeds ran that epoch.

    A seed that stopped early (early stopping) simply has no rows after its last epoch, so it
    neither drags the mean nor freezes at its final value.
    """
    if history is None or column not in history or history.empty:
        return pd.DataFrame(columns=["epoch", "mean", "min", "max", "running"])
    values = history[["seed", "epoch", column]].copy()
    values[column] = pd.to_numeric(values[column], errors="coerce")
    values = values[np.isfinite(values[column])]
    grouped = values.groupby("epoch")[column]
    out = pd.DataFrame(
        {"mean": grouped.mean(), "min": grouped.min(), "max": grouped.max(), "running": grouped.count()}
    )
    return out.reset_index().sort_values("epoch")


def stopped_early(history):
    """Seeds that ran fewer epochs than the longest seed: DataFrame of seed and last_epoch."""
    if history is None or history.empty:
        return pd.DataFrame(columns=["seed", "last_epoch"])
    keys = _keys(history)
    last = history.groupby(keys)["epoch"].max()
    stopped = last[last < last.max()].rename("last_epoch").reset_index()
    return stopped[[*keys, "last_epoch"]]


def _keys(history):
    """A run's key columns in history rows: seed, and fold with cross-validation."""
    return ["seed", "fold"] if "fold" in history and history["fold"].notna().all() else ["seed"]


def _has(history, column):
    return (
        history is not None
        and column in history
        and pd.to_numeric(history[column], errors="coerce").notna().any()
    )


def _figure(size):
    """A Figure on the Agg canvas; matplotlib is imported here, so that `compare --no-plots` and
    the report, which only read stored runs, do without its import (0.35 s)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    """Render the PNG, then write it as results writes every file (atomically, ordinary mode)."""
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    results.atomic_write(path, png.getvalue(), binary=True)
    return Path(path)


def _curve(ax, history, column, label, color):
    """Mean line and min-max band of one history column; returns the per-epoch stats drawn."""
    table = epoch_stats(history, column)
    if table.empty:
        return table
    ax.plot(table["epoch"], table["mean"], color=color, label=f"{label} (mean)")
    ax.fill_between(
        table["epoch"],
        table["min"],
        table["max"],
        color=color,
        alpha=0.2,
        linewidth=0,
        label=f"{label} (min-max over seeds)",
    )
    return table


def _mark_stops(ax, history, column, color):
    """An x where each early-stopped seed ended, at that seed's last value."""
    stops = stopped_early(history)
    if stops.empty or column not in history:
        return 0
    keys = _keys(history)
    ends = history.merge(stops, left_on=[*keys, "epoch"], right_on=[*keys, "last_epoch"])
    ax.scatter(
        ends["epoch"],
        pd.to_numeric(ends[column], errors="coerce"),
        marker="x",
        color=color,
        zorder=3,
        label="a seed stopped here" if column in ("loss", "accuracy") else None,
    )
    return len(ends)


def curves(history, path, title=None):
    """Write train & validation loss and accuracy per epoch (mean over running seeds, min-max band) to
    `path`."""
    figure = _figure((11, 4.2))
    panels = figure.subplots(1, 2)
    history = history if history is not None else pd.DataFrame(columns=["seed", "epoch"])
    for ax, metric in zip(panels, ("loss", "accuracy")):
        for column, label, color in (
            (metric, "train", "tab:blue"),
            (f"val_{metric}", "validation", "tab:orange"),
        ):
            if _has(history, column):
                _curve(ax, history, column, label, color)
                _mark_stops(ax, history, column, color)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center", transform=ax.transAxes)
    seeds = history["seed"].nunique() if "seed" in history else 0
    stopped = len(stopped_early(history))
    runs = len(history[_keys(history)].drop_duplicates()) if "seed" in history else 0
    note = (
        f"{seeds} seed(s)"
        + (f", {runs} runs (seed x fold)" if runs != seeds else "")
        + (f", {stopped} stopped early: mean over the seeds still running" if stopped else "")
    )
    figure.suptitle(f"{_short(title, 120)}\n{note}" if title else note, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def comparison(histories, frame, baseline, path, title=None):
    """Write validation-loss curves of every experiment (left) and test accuracy with its 95% CI (right)
    to `path`."""
    figure = _figure((13, max(4.0, 0.45 * len(frame) + 2)))
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    colors = _colors(list(frame["experiment"]), baseline)
    for name, history in histories.items():
        column = "val_loss" if _has(history, "val_loss") else "loss"
        table = epoch_stats(history, column)
        if table.empty:
            continue
        is_base = name == baseline
        suffix = "" if column == "val_loss" else " (train loss: no validation split)"
        left.plot(
            table["epoch"],
            table["mean"],
            linewidth=2.2 if is_base else 1.2,
            color=colors.get(name),
            linestyle="-" if column == "val_loss" else "--",
            label=f"{_short(name)}{suffix}" + (" [baseline]" if is_base else ""),
        )
    left.set_xlabel("epoch")
    left.set_ylabel("validation loss (mean over running seeds)")
    left.grid(alpha=0.3)
    if left.has_data():
        left.legend(fontsize=7)

    rows = frame.reset_index(drop=True)
    positions = np.arange(len(rows))[::-1]
    for y, (_, row) in zip(positions, rows.iterrows()):
        centre, low, high = (
            row["test_accuracy_mean"],
            row["test_accuracy_ci95_low"],
            row["test_accuracy_ci95_high"],
        )
        color = colors[row["experiment"]]
        err = [[centre - low], [high - centre]] if math.isfinite(low) else None
        right.errorbar([centre], [y], xerr=err, fmt="o", color=color, capsize=4)
        if row["experiment"] == baseline and math.isfinite(centre):
            right.axvline(centre, color=BASELINE_COLOR, linestyle="--", linewidth=0.8)
    right.set_yticks(positions)
    right.set_yticklabels(
        [_short(n) + (" [baseline]" if n == baseline else "") for n in rows["experiment"]], fontsize=8
    )
    for tick, name in zip(right.get_yticklabels(), rows["experiment"]):
        tick.set_color(colors[name])
        if name == baseline:
            tick.set_fontweight("bold")
    right.set_xlabel("test accuracy: mean and 95% interval over runs (this data set or split)")
    right.grid(axis="x", alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def _colors(names, baseline):
    """One colour per experiment, the same on both panels: red for the baseline, tab10 for the rest."""
    palette = [c for c in (f"C{i}" for i in range(10)) if c != "C3"]  # C3 is tab:red
    others = [n for n in names if n != baseline]
    return {baseline: BASELINE_COLOR, **{n: palette[i % len(palette)] for i, n in enumerate(others)}}


def _short(name, width=40):
    return name if len(name) <= width else f"{name[: width // 2 - 1]}…{name[-(width - width // 2) :]}"
