"""Compares stored experiments over runs: t intervals, gaps, diagnosis and run-paired differences vs a
baseline.

One row per experiment. Reads only results/<experiment>/{runs.csv, history.csv, spec.json} (no training,
no Keras): rows of an older spec (spec_hash differs from spec.json's) and runs not "ok" are left out. Runs
pair by seed (by (seed, fold) with cross-validation); intervals are corrected where training sets overlap
(resplit, k-fold), and the verdicts of one metric are decided on Holm-adjusted p-values over all variants
of the baseline.
"""

import glob
import hashlib
import math
import os
import re
import shlex
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import diagnosis, registry, results, stats
from harness.errors import HarnessError
from harness.formatting import number as _f
from harness.formatting import p_value as _p
from harness.formatting import runs_needed as runs_needed_text
from harness.formatting import text_table
from harness.spec import set_name, set_text, training_hash

METRICS = [f"{part}_{metric}" for part in ("train", "val", "test") for metric in ("loss", "accuracy")]
# Generalisation gaps per run: name -> (minuend, subtrahend); positive means worse off the training data.
GAPS = {
    "gap_val_loss": ("val_loss", "train_loss"),
    "gap_test_loss": ("test_loss", "train_loss"),
    "gap_accuracy": ("train_accuracy", "test_accuracy"),
}
# Compared with the baseline run by run: metric -> lower is better.
VERSUS = {"test_accuracy": False, "test_loss": True, "train_accuracy": False, "gap_test_loss": True}
# What "this" scope covers, by what the runs vary (docs/statistics.md); "new" exists where the split varies.
SCOPES = {
    "fixed": "this split; seeds vary initialisation and order",
    "resplit": "this data set; each seed its own split",
    "cv": "this data set; each repeat of the {folds}-fold its own partition",
    "cv1": "this partition ({folds}-fold, 1 repeat); seeds vary initialisation and order",
}
SCOPE_NEW = "new data of this size"
# The intervals, said once in a table's header.
METHODS = {
    "mean": "t on the logit (accuracy) or log (loss, seconds) scale, back-transformed, so inside the "
    "metric's range",
    "this": "paired t over the independent draws",
    "new": "Nadeau and Bengio's corrected resampled t",
    "improved": "Wilson score interval",
}
SUMMARY_STATS = ("mean", "std", "ci95_low", "ci95_high")
# Per scope, the columns of a compared metric: name -> the CSV column after "<metric>_".
SCOPE_COLUMNS = {
    "this": {
        "ci95_low": "diff_ci95_low",
        "ci95_high": "diff_ci95_high",
        "p_value": "p_value",
        "p_adjusted": "p_adjusted",
        "verdict": "verdict",
        "runs_needed": "runs_needed",
    },
    "new": {
        "ci95_low": "diff_new_ci95_low",
        "ci95_high": "diff_new_ci95_high",
        "p_value": "new_p_value",
        "p_adjusted": "new_p_adjusted",
        "verdict": "new_verdict",
        "runs_needed": "new_runs_needed",
    },
}
IMPROVEMENT_COLUMNS = (
    "wins",
    "ties",
    "losses",
    "prob_improvement",
    "prob_improvement_ci95_low",
    "prob_improvement_ci95_high",
)
DEFAULT_ROOT = "results"


def bounds(metric):
    """The range a per-run metric can take: accuracies [0, 1], losses and seconds [0, inf), the accuracy
    gap [-1, 1], loss gaps unbounded."""
    if metric == "gap_accuracy":
        return (-1.0, 1.0)
    if metric.endswith("accuracy"):
        return (0.0, 1.0)
    if metric.endswith("loss") and not metric.startswith("gap_") or metric == "fit_seconds":
        return (0.0, math.inf)
    return stats.UNBOUNDED


def diff_bounds(metric):
    """The range a difference of `metric` between two runs can take (e.g. [-1, 1] for accuracies)."""
    low, high = bounds(metric)
    return (low - high, high - low) if math.isfinite(low) and math.isfinite(high) else stats.UNBOUNDED


def columns():
    """The columns of the comparison CSV, in order. Names with "new" are the new-data scope; the others
    of a compared metric are the scope the row's `scope` column names (this data set, or this split)."""
    cols = [
        "experiment",
        "baseline",
        "is_baseline",
        "spec_hash",
        "runs",
        "seeds",
        "stale_rows",
        "not_ok_runs",
        "scope",
        "scope_new",
        "overlap_ratio",
        "diagnosis",
        "diagnosis_counts",
    ]
    cols += [f"{m}_{s}" for m in [*METRICS, *GAPS] for s in (*SUMMARY_STATS, "new_ci95_low", "new_ci95_high")]
    cols += [
        "epochs_run_mean",
        "best_epoch_mean",
        *[f"fit_seconds_{s}" for s in SUMMARY_STATS],
        "paired_seeds",
        "paired_units",
        "diff_overlap_ratio",
    ]
    for m in VERSUS:
        cols.append(f"{m}_diff")
        for scope in stats.SCOPES:
            cols += [f"{m}_{c}" for c in SCOPE_COLUMNS[scope].values()]
        cols += [f"{m}_verdict_words", *[f"{m}_{c}" for c in IMPROVEMENT_COLUMNS]]
    return cols


def spec_hash(stored_spec):
    """The hash of a spec.json, as Spec.hash computes it (a CSV file's bytes included); None when
    its data file cannot be read any more."""
    try:
        return training_hash(stored_spec)
    except HarnessError:
        return None


@dataclass
class Stored:
    """One experiment's usable stored runs: ok rows of the current spec, their history, and what was
    left out."""

    name: str
    spec: dict
    spec_hash: str
    runs: pd.DataFrame  # status ok, current spec, one row per run (seed, or seed and fold), with gaps added
    history: pd.DataFrame  # epochs of those runs
    diagnoses: pd.DataFrame  # one row per run of the current spec that has curves (ok or diverged)
    stale_rows: int
    not_ok_runs: int


def run_command(name, root, spec=None):
    """The command that (re)creates an experiment's runs, as the user would type it."""
    where = "" if str(root) in (DEFAULT_ROOT, DEFAULT_ROOT + "/") else f" --results {shlex.quote(str(root))}"
    base, overrides = (spec or {}).get("base"), (spec or {}).get("overrides") or {}
    if base and overrides and name == set_name(base, overrides):  # a `run BASE --set ...` result
        sets = " ".join("--set " + shlex.quote(set_text(k, v)) for k, v in overrides.items())
        return f"python -m harness run {shlex.quote(base)} {sets}{where}"
    return f"python -m harness run {shlex.quote(name)}{where}"


class NoUsableRuns(HarnessError):
    """An experiment whose stored runs are all stale, failed or diverged (`not_ok`: how many of the
    current spec)."""

    def __init__(self, message, not_ok=0):
        super().__init__(message)
        self.not_ok = not_ok


def read(root, name):
    """The usable runs of one experiment; raises HarnessError naming the run command when there are none."""
    folder = results.experiment_dir(root, name)
    runs = results.read_csv(folder / "runs.csv")
    spec = results.stored_spec(root, name)
    if runs is None or runs.empty:
        raise HarnessError(
            f"experiment {name!r} has no stored runs in {folder}; "
            f"run it first: {run_command(name, root, spec)}"
        )
    latest = runs.sort_values("finished_at", kind="stable") if "finished_at" in runs else runs
    # no spec.json, or its data file is gone: the latest run's spec
    current = (spec_hash(spec) if spec else None) or str(latest["spec_hash"].iloc[-1])
    mine = runs[runs["spec_hash"] == current]
    keys = results.run_keys(mine)
    ok = mine[mine["status"] == "ok"].drop_duplicates(keys, keep="last").sort_values(keys, kind="stable")
    stale, not_ok = len(runs) - len(mine), len(mine) - len(mine[mine["status"] == "ok"])
    if ok.empty:
        raise NoUsableRuns(
            f"experiment {name!r} has no usable runs in {folder}: {stale} row(s) are from an older spec and "
            f"{not_ok} failed or diverged; run it: {run_command(name, root, spec)}",
            not_ok,
        )
    ok = ok.reindex(columns=list(dict.fromkeys([*results.RUN_COLUMNS, *ok.columns]))).reset_index(drop=True)
    for gap, (a, b) in GAPS.items():
        ok[gap] = pd.to_numeric(ok[a], errors="coerce") - pd.to_numeric(ok[b], errors="coerce")
    history = results.read_csv(folder / "history.csv")
    history = (
        pd.DataFrame(columns=results.HISTORY_KEYS)
        if history is None
        else history[history["spec_hash"] == current]
    )
    judged = mine[mine["status"].isin(["ok", "diverged"])].drop_duplicates(keys, keep="last")
    diagnoses = diagnosis.diagnose_runs(judged, history, diagnosis.chance_loss(spec or {}))
    if "seed" in history:
        kept = ok[keys].drop_duplicates()
        history = history.merge(kept, on=keys) if set(keys) <= set(history.columns) else history
    return Stored(name, spec or {}, current, ok, history, diagnoses, stale, not_ok)


@dataclass(frozen=True)
class _StoredOnly:
    """An experiment known only from its results folder (e.g. a `run NAME --set ...` variant)."""

    name: str
    tags: tuple = ()  # never pulled in by --suite: name it (or a pattern) to compare it
    hash: str = None


def select(specs, root, patterns=(), suite=None):
    """(names, {name: current spec hash or None}) chosen by registry.select among the registry's
    experiments plus those stored under `root` only; a pattern equal to a name matches it literally."""
    known = dict(specs)
    if Path(root).is_dir():
        for folder in sorted(Path(root).iterdir()):
            if folder.name not in known and (folder / "spec.json").is_file():
                known[folder.name] = _StoredOnly(folder.name)
    literal = [glob.escape(p) if p in known else p for p in patterns]
    chosen = registry.select(known, literal, suite)
    return [s.name for s in chosen], {s.name: s.hash for s in chosen}


def choose_baseline(stored, requested=None):
    """--baseline if given, else the experiment the others name as their "base" (most common), else the
    first."""
    names = [s.name for s in stored]
    if requested:
        if requested not in names:
            raise HarnessError(
                f"--baseline {requested!r} is not among the compared experiments: {', '.join(names)}"
            )
        return requested
    bases = Counter(
        s.spec.get("base") for s in stored if s.spec.get("base") in names and s.spec.get("base") != s.name
    )
    if bases:
        top = max(bases.values())
        return next(n for n in names if bases.get(n) == top)
    return names[0]


def _design(spec):
    """How a stored spec's runs were drawn: its n_test / n_train where the split varies (resplit, cv; 0
    for a fixed split or an unreadable spec) and its folds per repeat with cv."""
    from harness.data import overlap_ratio
    from harness.spec import DEFAULTS

    data = {**DEFAULTS["data"], **(spec.get("data") or {})}
    try:
        ratio = overlap_ratio(data)
    except Exception:  # an unreadable stored spec: the fixed split's interval, as before
        ratio = 0.0
    return stats.Design(ratio, int(data["cv"]["folds"]) if data.get("cv") else 0)


def _pair_design(spec, base_spec):
    """The design of a variant's differences from the baseline: the training sets of the two overlap as
    much as the more overlapping one's do; folds when both are cross-validated alike."""
    mine, theirs = _design(spec), _design(base_spec)
    return stats.Design(max(mine.ratio, theirs.ratio), mine.folds if mine.folds == theirs.folds else 0)


def scope_of(*specs):
    """What the "this" scope of runs of `specs` (an experiment, or a variant and its baseline) covers."""
    datas = [s.get("data") or {} for s in specs]
    cv = next((d["cv"] for d in datas if d.get("cv")), None)
    if cv:
        return SCOPES["cv" if cv.get("repeats", 1) > 1 else "cv1"].format(folds=cv["folds"])
    return SCOPES["resplit" if any(d.get("resplit") for d in datas) else "fixed"]


def scope_name(scope):
    """The short name of a scope label: 'this split', 'this data set', 'this partition'."""
    return scope.split(";")[0].split(" (")[0]


def _by_run(runs, metric):
    """A metric of stored runs indexed by seed, or by (seed, fold) with cross-validation (no fold: -1)."""
    values = pd.to_numeric(runs[metric], errors="coerce")
    if "fold" not in runs or runs["fold"].isna().all():
        return pd.Series(values.to_numpy(), index=runs["seed"].astype(int).to_numpy())
    folds = pd.to_numeric(runs["fold"], errors="coerce").fillna(-1).astype(int)
    return pd.Series(values.to_numpy(), index=pd.MultiIndex.from_arrays([runs["seed"].astype(int), folds]))


def verdict_words(this, new, scope):
    """A metric's verdict in words per scope, e.g. 'better on this data set; not shown for new data'
    (`new` None: the runs have one scope, `scope`'s)."""
    here = scope_name(scope)
    if new is None:
        return f"{this} on {here}"
    if this == new:
        return (
            f"{this} on {here} or for new data"
            if this == "no evidence"
            else f"{this} on {here} and for new data"
        )
    return f"{this} on {here}; " + (
        "not shown for new data" if new == "no evidence" else f"{new} for new data"
    )


def _row(s, base):
    """The comparison row of one experiment against the baseline's stored runs (its verdicts are
    decided later, by `decide`, on the p-values adjusted over all variants)."""
    design = _design(s.spec)
    is_base = s.name == base.name
    row = {
        "experiment": s.name,
        "baseline": base.name,
        "is_baseline": is_base,
        "spec_hash": s.spec_hash,
        "runs": len(s.runs),
        "seeds": " ".join(str(int(x)) for x in dict.fromkeys(s.runs["seed"])),
        "stale_rows": s.stale_rows,
        "not_ok_runs": s.not_ok_runs,
        "scope": scope_of(s.spec) if is_base else scope_of(s.spec, base.spec),
        "scope_new": SCOPE_NEW if design.ratio or _design(base.spec).ratio else "",
        "overlap_ratio": design.ratio,
        "diagnosis": diagnosis.majority(s.diagnoses["label"]),
        "diagnosis_counts": diagnosis.counts(s.diagnoses["label"]),
    }
    for metric in [*METRICS, *GAPS, "fit_seconds"]:
        values = _by_run(s.runs, metric)
        low, high = stats.ci(values, design=design, bounds=bounds(metric))
        row.update(
            {
                f"{metric}_mean": stats.mean(values),
                f"{metric}_std": stats.std(values),
                f"{metric}_ci95_low": low,
                f"{metric}_ci95_high": high,
            }
        )
        if metric != "fit_seconds":
            low, high = stats.ci(values, design=design, scope="new", bounds=bounds(metric))
            row.update({f"{metric}_new_ci95_low": low, f"{metric}_new_ci95_high": high})
    for metric in ("epochs_run", "best_epoch"):
        row[f"{metric}_mean"] = stats.mean(pd.to_numeric(s.runs[metric], errors="coerce"))
    if is_base:
        row.update(paired_seeds=len(s.runs), paired_units=math.nan, diff_overlap_ratio=math.nan)
        for metric in VERSUS:
            row[f"{metric}_verdict"] = row[f"{metric}_verdict_words"] = "baseline"
        return row
    pair = _pair_design(s.spec, base.spec)
    row["diff_overlap_ratio"] = pair.ratio
    for metric, lower_is_better in VERSUS.items():
        mine, theirs = _by_run(s.runs, metric), _by_run(base.runs, metric)
        for scope in pair.scopes:
            result = stats.paired(mine, theirs, design=pair, scope=scope, bounds=diff_bounds(metric))
            names = SCOPE_COLUMNS[scope]
            row.update(
                {
                    f"{metric}_diff": result.diff,
                    f"{metric}_{names['ci95_low']}": result.ci_low,
                    f"{metric}_{names['ci95_high']}": result.ci_high,
                    f"{metric}_{names['p_value']}": result.p_value,
                    f"_{metric}_{scope}": result,  # for decide(): Holm, verdict and runs needed
                }
            )
            if scope == "this":
                row["paired_seeds"] = max(row.get("paired_seeds", 0), result.n)
                row["paired_units"] = result.units
        better = stats.improvement(mine, theirs, lower_is_better, pair)
        row.update(
            {
                f"{metric}_wins": better.wins,
                f"{metric}_ties": better.ties,
                f"{metric}_losses": better.n - better.wins - better.ties,
                f"{metric}_prob_improvement": better.share,
                f"{metric}_prob_improvement_ci95_low": better.low,
                f"{metric}_prob_improvement_ci95_high": better.high,
            }
        )
    return row


def frame_keys(stored):
    """The run keys of the compared runs: seed, and fold when any of them was cross-validated."""
    return (
        ["seed", "fold"]
        if any("fold" in s.runs and s.runs["fold"].notna().any() for s in stored)
        else ["seed"]
    )


def search_of(stored):
    """The search all `stored` experiments are trials of (their common base, named `BASE[...]`), else None."""
    bases = {s.spec.get("base") for s in stored}
    base = bases.pop() if len(bases) == 1 else None
    return base if base and len(stored) > 1 and all(s.name.startswith(f"{base}[") for s in stored) else None


def _rank_key(s):
    """Trials rank by mean validation accuracy, then validation loss (test, where there is no validation
    part)."""
    part = "val" if pd.to_numeric(s.runs["val_accuracy"], errors="coerce").notna().any() else "test"
    accuracy, loss = (
        stats.mean(pd.to_numeric(s.runs[f"{part}_{m}"], errors="coerce")) for m in ("accuracy", "loss")
    )
    return (-accuracy if math.isfinite(accuracy) else math.inf, loss if math.isfinite(loss) else math.inf)


def decide(rows, min_effect=None, level=stats.LEVEL):
    """Per VERSUS metric and scope, over the variants' rows (one family: one baseline, its variants, one
    metric, one scope): Holm-adjusted p-values, the verdicts decided on them, and for each "no evidence" the
    runs that would resolve a difference of the observed size (or `min_effect`) with 80% power at the
    family's level; then each metric's verdict in words over both scopes."""
    for metric, lower_is_better in VERSUS.items():
        for scope in stats.SCOPES:
            names = SCOPE_COLUMNS[scope]
            family = [row for row in rows if f"_{metric}_{scope}" in row]
            results_ = [row.pop(f"_{metric}_{scope}") for row in family]
            adjusted = stats.holm([r.p_value for r in results_])
            size = sum(math.isfinite(p) for p in adjusted)
            for row, result, p in zip(family, results_, adjusted):
                verdict = result.verdict(lower_is_better, p_value=p)
                effect = abs(result.diff) if min_effect is None else abs(min_effect)
                # at the level Holm needs for the smallest p-value of the family (Bonferroni's):
                # reaching it decides
                needed = stats.runs_needed(
                    result.sd, effect, level=1 - (1 - level) / max(size, 1), ratio=result.ratio
                )
                row.update(
                    {
                        f"{metric}_{names['p_adjusted']}": p,
                        f"{metric}_{names['verdict']}": verdict,
                        f"{metric}_{names['runs_needed']}": needed if verdict == "no evidence" else math.nan,
                    }
                )
        for row in rows:
            if not row["is_baseline"]:
                new = row.get(f"{metric}_new_verdict") if row["scope_new"] else None
                row[f"{metric}_verdict_words"] = verdict_words(row[f"{metric}_verdict"], new, row["scope"])
    return rows


def build(stored, baseline, min_effect=None):
    """The comparison DataFrame: the baseline's row first, then the others in selection order."""
    base = next(s for s in stored if s.name == baseline)
    ordered = [base, *[s for s in stored if s.name != baseline]]
    return pd.DataFrame(decide([_row(s, base) for s in ordered], min_effect), columns=columns())


def output_name(names, suite=None):
    """A file-safe name for the comparison: the suite, else the experiment names joined by '+'."""
    label = suite or "+".join(names)
    safe = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]+", "_", label).strip("._") or "comparison"
    if len(safe) > 100:  # long names (e.g. --set variants): the first, a count and a hash of them all
        first = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]+", "_", names[0] if not suite else suite)[:60]
        safe = f"{first}+{len(names) - 1}-more-{hashlib.sha1(label.encode()).hexdigest()[:8]}"
    return safe


def write(frame, root, label):
    """Write the full comparison to <root>/comparisons/<label>.csv atomically; returns the path."""
    path = Path(root) / "comparisons" / f"{label}.csv"
    results.write_frame(path, frame)
    return path


def _short(name, width=44):
    return name if len(name) <= width else f"{name[: width // 2 - 1]}…{name[-(width - width // 2) :]}"


def _mean_ci(row, metric, digits=3):
    """'mean [low, high]' of a metric's "this" interval (the mean alone, or '-', when there is none)."""
    centre, low, high = row[f"{metric}_mean"], row[f"{metric}_ci95_low"], row[f"{metric}_ci95_high"]
    if not math.isfinite(centre):
        return "-"
    if not math.isfinite(low):
        return f"{centre:.{digits}f}"
    return f"{centre:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _interval(low, high):
    return f"[{low:+.3f}, {high:+.3f}]" if math.isfinite(low) and math.isfinite(high) else "n/a"


def improved_text(row, metric):
    """('19/20' or '14/20, 2 tied', '0.95 [0.76, 0.99]'): on how many units the variant beat the baseline,
    and the probability of improvement with its interval ('-' for the baseline)."""
    wins, ties, losses = (row[f"{metric}_{c}"] for c in ("wins", "ties", "losses"))
    if not math.isfinite(row[f"{metric}_prob_improvement"]):
        return "-", "-"
    count = f"{int(wins)}/{int(wins + ties + losses)}" + (f", {int(ties)} tied" if ties else "")
    low, high = row[f"{metric}_prob_improvement_ci95_low"], row[f"{metric}_prob_improvement_ci95_high"]
    return count, f"{row[f'{metric}_prob_improvement']:.2f} " + _interval_plain(low, high)


def _interval_plain(low, high):
    return f"[{low:.2f}, {high:.2f}]" if math.isfinite(low) and math.isfinite(high) else ""


def tables(frame):
    """The text tables: the experiments over runs, then per compared metric each variant's difference from
    the baseline in each scope, with its verdicts and probability of improvement."""
    if "rank" in frame:
        return _ranked(frame)
    first = [
        [
            _short(r["experiment"]) + (" *" if r["is_baseline"] else ""),
            r["runs"],
            r["diagnosis"],
            _f(r["train_accuracy_mean"]),
            _mean_ci(r, "test_accuracy"),
            _mean_ci(r, "test_loss"),
            _mean_ci(r, "gap_test_loss"),
            _f(r["epochs_run_mean"], ".0f"),
            _f(r["fit_seconds_mean"], ".1f"),
        ]
        for _, r in frame.iterrows()
    ]
    head = ["experiment", "n", "diagnosis", "train acc", "test acc [95% CI]", "test loss [95% CI]"]
    head += ["test-train loss [95% CI]", "epochs", "fit s"]
    text = [text_table(head, first)]
    others = frame[~frame["is_baseline"]]
    if others.empty:
        return "\n".join(text)
    here = " / ".join(dict.fromkeys(scope_name(s) for s in others["scope"]))
    new = bool(others["scope_new"].astype(bool).any())
    for metric, lower_is_better in VERSUS.items():
        lines = [_difference_line(r, metric, new) for _, r in others.iterrows()]
        head = ["experiment", "Δ", "95% CI", "p Holm", "verdict", "runs"]
        groups = [(here, 2, 5)]
        if new:
            head += ["95% CI", "p Holm", "verdict", "runs"]
            groups.append((SCOPE_NEW, 6, 9))
        head += ["improved on", "P(improved)"]
        title = f"{WORDS[metric]} ({metric}; {'lower' if lower_is_better else 'higher'} is better)"
        text += ["", title, text_table(head, lines, groups)]
    return "\n".join(text)


def _difference_line(r, metric, new):
    """One variant's line of a metric's differences table (`new`: the table has new-data columns)."""
    line = [
        _short(r["experiment"]),
        _f(r[f"{metric}_diff"], "+.3f"),
        _interval(r[f"{metric}_diff_ci95_low"], r[f"{metric}_diff_ci95_high"]),
        _p(r[f"{metric}_p_adjusted"]),
        r[f"{metric}_verdict"],
        runs_needed_text(r[f"{metric}_runs_needed"]),
    ]
    if new and r["scope_new"]:
        line += [
            _interval(r[f"{metric}_diff_new_ci95_low"], r[f"{metric}_diff_new_ci95_high"]),
            _p(r[f"{metric}_new_p_adjusted"]),
            r[f"{metric}_new_verdict"],
            runs_needed_text(r[f"{metric}_new_runs_needed"]),
        ]
    elif new:
        line += ["-", "-", "-", "-"]
    return [*line, *improved_text(r, metric)]


WORDS = {
    "test_accuracy": "test accuracy",
    "test_loss": "test loss",
    "train_accuracy": "train accuracy",
    "gap_test_loss": "test − train loss gap",
}


def headline(frame):
    """One sentence: which variants differ from the baseline with evidence, per scope and metric."""
    others = frame[~frame["is_baseline"]]
    if others.empty:
        return "Only one experiment: nothing to compare with."
    baseline = frame["baseline"].iloc[0]
    names = list(others["experiment"])
    if all(name.startswith(baseline + "_") for name in names):  # iris_overfit_l2 -> l2
        prefix = baseline + "_"
    else:  # overfit_baseline, overfit_l2 -> l2
        common = os.path.commonprefix([baseline, *names])
        prefix = common[: common.rfind("_") + 1]
    short = lambda name: name[len(prefix) :] or name  # noqa: E731

    def found(column):
        parts = []
        for verdict in ("better", "worse"):
            for metric in VERSUS:
                names = [
                    short(r["experiment"]) for _, r in others.iterrows() if r[f"{metric}_{column}"] == verdict
                ]
                if names:
                    parts.append(f"{len(names)} {verdict} in {WORDS[metric]} ({', '.join(names)})")
        return parts

    scope = Counter(others["scope"]).most_common(1)[0][0]
    here = scope_name(scope)
    units = int(others["paired_units"].max()) if others["paired_units"].notna().any() else 0
    unit = "splits" if scope == SCOPES["resplit"] else "draws" if "partition" in scope else "seeds"
    this = found("verdict")
    text = (
        f"Against {baseline} ({len(others)} variant{'s' if len(others) != 1 else ''}, {units} {unit} each): "
        f"on {here}, " + ("; ".join(this) if this else "no variant differs with evidence")
    )
    if others["scope_new"].astype(bool).any():
        new = found("new_verdict")
        text += "; for new data of this size, " + ("; ".join(new) if new else "none is shown to differ")
    return text + " (Holm-adjusted, 95%)."


def _ranked(frame):
    """The tables of a search: trials best first by validation metrics, each against the best."""
    prefix = len(frame["baseline"].iloc[0]) - len(frame["baseline"].iloc[0].split("[", 1)[-1]) - 1
    label = lambda name: name[prefix:] if prefix > 0 else name  # noqa: E731
    rows = [
        [
            r["rank"],
            label(r["experiment"]) + (" *" if r["is_baseline"] else ""),
            r["runs"],
            r["diagnosis"],
            _mean_ci(r, "val_accuracy"),
            _mean_ci(r, "val_loss"),
            _mean_ci(r, "test_accuracy"),
            r["test_accuracy_verdict"] if not r["is_baseline"] else "best",
            _f(r["fit_seconds_mean"], ".1f"),
        ]
        for _, r in frame.iterrows()
    ]
    text = [
        f"trials of {frame['experiment'].iloc[0][:prefix]}, ranked by validation accuracy (then loss)",
        text_table(
            [
                "rank",
                "trial",
                "n",
                "diagnosis",
                "val acc [95% CI]",
                "val loss [95% CI]",
                "test acc [95% CI]",
                "test acc vs best",
                "fit s",
            ],
            rows,
        ),
    ]
    return "\n".join(text)


@dataclass
class Comparison:
    """A comparison of stored experiments: `table` has the comparisons CSV's columns (one row per
    experiment, the baseline first), `summary` the printed first table's numbers, `differences` one
    row per (experiment, metric) against the baseline with its paired 95% interval and verdict,
    `notes` what the tables leave out (runs of an older spec, failed runs, experiments left out)."""

    table: pd.DataFrame
    stored: list  # Stored, in selection order (a search's: ranked)
    baseline: str
    label: str  # the file name the comparison is written under (no suffix)
    left_out: list  # experiments every run of which failed or diverged
    min_effect: float = None  # the difference "runs needed" is for (None: each observed difference)
    notes: list = field(default_factory=list)

    @property
    def summary(self):
        metrics = ["train_accuracy", "test_accuracy", "test_loss", "gap_test_loss", "fit_seconds"]
        cols = ["rank", "experiment", "is_baseline", "runs", "diagnosis"]
        cols += [f"{m}_{s}" for m in metrics for s in ("mean", "ci95_low", "ci95_high")] + ["epochs_run_mean"]
        return self.table[[c for c in cols if c in self.table]].reset_index(drop=True)

    @property
    def differences(self):
        rows = [
            {
                "experiment": r["experiment"],
                "baseline": r["baseline"],
                "metric": metric,
                "lower_is_better": lower_is_better,
                "pairs": r["paired_seeds"],
                "units": r["paired_units"],
                "scope": r["scope"],
                **{name: r[f"{metric}_{column}"] for name, column in DIFFERENCE_COLUMNS.items()},
            }
            for _, r in self.table[~self.table["is_baseline"]].iterrows()
            for metric, lower_is_better in VERSUS.items()
        ]
        columns = ["experiment", "baseline", "metric", "lower_is_better", "pairs", "units", "scope"]
        return pd.DataFrame(rows, columns=[*columns, *DIFFERENCE_COLUMNS])

    def text(self):
        """The tables as `python -m harness compare` prints them."""
        return tables(self.table)

    def _repr_html_(self):  # a notebook shows the summary table
        return self.summary.to_html(index=False, float_format=lambda v: f"{v:.4f}")


# The differences' columns: name -> the comparisons CSV's column after "<metric>_" ("new_": the new-data
# scope; the others: the row's scope).
DIFFERENCE_COLUMNS = {
    "diff": "diff",
    **SCOPE_COLUMNS["this"],
    **{f"new_{name}": column for name, column in SCOPE_COLUMNS["new"].items()},
    "verdict_words": "verdict_words",
    **{name: name for name in IMPROVEMENT_COLUMNS},
}


def compute(names, root=DEFAULT_ROOT, baseline=None, suite=None, min_effect=None, current_hashes=None):
    """Load and compare stored experiments; writes and prints nothing.

    `min_effect`: the difference the "runs needed" column is for (default: each observed difference);
    `current_hashes`: {name: the spec hash its definition has now}, to note results of an older one."""
    if baseline and baseline not in names:  # --baseline NAME compares against NAME even when not selected
        names = [baseline, *names]
    stored, left_out = [], []
    for name in names:
        try:
            stored.append(read(root, name))
        except NoUsableRuns as exc:  # e.g. a search's trial whose rate diverged: a result, not a mistake
            if len(names) == 1 or name == baseline or not exc.not_ok:
                raise
            left_out.append(name)
    if not stored:
        raise HarnessError(
            f"no compared experiment has usable runs; all of {', '.join(names)} failed or diverged"
        )
    searched = search_of(stored)
    if searched:  # trials of one search: best first, and each compared with the best
        stored = sorted(stored, key=_rank_key)
    chosen = choose_baseline(stored, baseline or (stored[0].name if searched else None))
    table = build(stored, chosen, min_effect)
    if searched:
        table = table.set_index("experiment").loc[[s.name for s in stored]].reset_index()
        table.insert(0, "rank", range(1, len(table) + 1))
    label = output_name(names, suite or searched)
    notes = _notes(stored, left_out, root, current_hashes or {})
    return Comparison(table, stored, chosen, label, left_out, min_effect, notes)


def _notes(stored, left_out, root, current_hashes):
    """What the tables leave out, one sentence each."""
    notes = [
        f"{name}: left out, every run of its current spec failed or diverged "
        "(runs.csv has the status and error)"
        for name in left_out
    ]
    for s in stored:
        if s.stale_rows:
            notes.append(f"{s.name}: ignored {s.stale_rows} stored row(s) of an older spec")
        if s.not_ok_runs:
            notes.append(f"{s.name}: left out {s.not_ok_runs} failed or diverged run(s)")
        wanted = current_hashes.get(s.name)
        if wanted and wanted != s.spec_hash:
            notes.append(
                f"{s.name}: its definition changed since the stored runs (stored spec {s.spec_hash}, now "
                f"{wanted}); these are the old spec's numbers; refresh with: {run_command(s.name, root)}"
            )
    return notes


def methods(frame):
    """The intervals of a comparison, said once: one line per kind of number."""
    others = frame[~frame["is_baseline"]]
    ratios = sorted({round(r, 2) for r in others["diff_overlap_ratio"] if math.isfinite(r) and r > 0})
    lines = [f"means: {METHODS['mean']}"]
    scopes = list(dict.fromkeys(frame["scope"] if others.empty else others["scope"]))
    lines += [f"Δ on {scope}: {METHODS['this']}" for scope in scopes]
    if ratios:
        lines.append(
            f"Δ for {SCOPE_NEW}: {METHODS['new']} (n_test/n_train {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    if not others.empty:
        lines.append(
            "P(improved): the share of the draws on which the variant beats the baseline (ties count half), "
            f"{METHODS['improved']}"
        )
        lines.append(f"p Holm: adjusted per metric and scope over the {len(others)} variant(s)")
    return lines


def show(comparison, out=print):
    """Print a comparison's tables and its notes through `out` (prose wrapped at 110 columns)."""
    table = comparison.table
    out("mean [95% CI] over runs; * = baseline. Intervals:")
    indent = {"initial_indent": "  ", "subsequent_indent": "    "}
    out("\n".join(textwrap.fill(text, 110, **indent) for text in methods(table)))
    out("\n" + tables(table))
    if "rank" not in table and len(table) > 1:
        effect = "the observed Δ" if comparison.min_effect is None else f"Δ = {comparison.min_effect:g}"
        said = [
            f"Δ = experiment − baseline ({comparison.baseline}), paired by "
            f"{'(seed, fold)' if 'fold' in frame_keys(comparison.stored) else 'seed'} on the runs both have; "
            "verdicts on p Holm < 0.05, 'no evidence' (not a win) otherwise; "
            f"runs: the independent draws that would resolve {effect} with 80% power."
        ]
        if table["scope_new"].astype(bool).any():
            said.append(
                "Runs for new data is 'never' where the observed Δ is below what n_test/n_train allows: the "
                "corrected error never falls below sd·sqrt(n_test/n_train), as more seeds re-split the same "
                "data."
            )
        said.append(headline(table))
        out("\n" + "\n\n".join(textwrap.fill(text, 110) for text in said))
    for note in comparison.notes:
        out(f"note: {note}")


def main(
    names,
    root=DEFAULT_ROOT,
    baseline=None,
    suite=None,
    plots=True,
    current_hashes=None,
    out=print,
    min_effect=None,
):
    """Load, compare, write the CSV (and plots) and print the tables; returns the Comparison.

    `min_effect`: the difference the "runs needed" column is for (default: each observed difference)."""
    comparison = compute(names, root, baseline, suite, min_effect, current_hashes)
    csv_path = write(comparison.table, root, comparison.label)
    show(comparison, out)
    written = [csv_path]
    if plots:
        from harness import plots as drawing

        for s in comparison.stored:
            written.append(
                drawing.curves(s.history, results.experiment_dir(root, s.name) / "curves.png", title=s.name)
            )
        histories = {s.name: s.history for s in comparison.stored}
        written.append(
            drawing.comparison(histories, comparison.table, comparison.baseline, csv_path.with_suffix(".png"))
        )
    out("\nwrote:\n  " + "\n  ".join(str(p) for p in written))
    return comparison
