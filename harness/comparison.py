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
import re
import shlex
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
# What the runs of a spec vary, and so what its intervals cover: fixed split, resplit or k-fold.
INTERVALS = {
    "fixed": "paired t; seeds (init+shuffle), fixed split",
    "resplit": "corrected t (n_test/n_train {ratio:.2f}); seeds + resplit (repeated hold-out)",
    "cv": "corrected t (n_test/n_train {ratio:.2f}); seeds x {folds}-fold x {repeats} repeats",
}
SUMMARY_STATS = ("mean", "std", "ci95_low", "ci95_high")
DEFAULT_ROOT = "results"


def columns():
    """The columns of the comparison CSV, in order."""
    cols = [
        "experiment",
        "baseline",
        "is_baseline",
        "spec_hash",
        "runs",
        "seeds",
        "stale_rows",
        "not_ok_runs",
        "interval",
        "diagnosis",
        "diagnosis_counts",
    ]
    cols += [f"{m}_{s}" for m in [*METRICS, *GAPS] for s in SUMMARY_STATS]
    cols += [
        "epochs_run_mean",
        "best_epoch_mean",
        *[f"fit_seconds_{s}" for s in SUMMARY_STATS],
        "paired_seeds",
    ]
    for m in VERSUS:
        cols += [
            f"{m}_diff",
            f"{m}_diff_ci95_low",
            f"{m}_diff_ci95_high",
            f"{m}_p_value",
            f"{m}_p_adjusted",
            f"{m}_verdict",
            f"{m}_runs_needed",
        ]
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


def _ratio(spec):
    """n_test / n_train of a stored spec's runs when their training sets overlap (resplit, cv), else 0."""
    from harness.data import overlap_ratio
    from harness.spec import DEFAULTS

    data = {**DEFAULTS["data"], **(spec.get("data") or {})}
    try:
        return overlap_ratio(data)
    except Exception:  # an unreadable stored spec: the plain interval, as before
        return 0.0


def _interval(spec, ratio=None):
    """The label of the interval a stored spec's runs get (what they vary, and the correction)."""
    data = spec.get("data") or {}
    ratio = _ratio(spec) if ratio is None else ratio
    if data.get("cv"):
        return INTERVALS["cv"].format(
            ratio=ratio, folds=data["cv"]["folds"], repeats=data["cv"].get("repeats", 1)
        )
    return INTERVALS["resplit" if data.get("resplit") else "fixed"].format(ratio=ratio)


def _by_run(runs, metric):
    """A metric of stored runs indexed by seed, or by (seed, fold) with cross-validation (no fold: -1)."""
    values = pd.to_numeric(runs[metric], errors="coerce")
    if "fold" not in runs or runs["fold"].isna().all():
        return pd.Series(values.to_numpy(), index=runs["seed"].astype(int).to_numpy())
    folds = pd.to_numeric(runs["fold"], errors="coerce").fillna(-1).astype(int)
    return pd.Series(values.to_numpy(), index=pd.MultiIndex.from_arrays([runs["seed"].astype(int), folds]))


def _row(s, base):
    """The comparison row of one experiment against the baseline's stored runs (its verdicts are
    decided later, by `build`, on the p-values adjusted over all variants)."""
    ratio = _ratio(s.spec)
    row = {
        "experiment": s.name,
        "baseline": base.name,
        "is_baseline": s.name == base.name,
        "spec_hash": s.spec_hash,
        "runs": len(s.runs),
        "seeds": " ".join(str(int(x)) for x in dict.fromkeys(s.runs["seed"])),
        "stale_rows": s.stale_rows,
        "not_ok_runs": s.not_ok_runs,
        "interval": _interval(s.spec, ratio),
        "diagnosis": diagnosis.majority(s.diagnoses["label"]),
        "diagnosis_counts": diagnosis.counts(s.diagnoses["label"]),
    }
    for metric in [*METRICS, *GAPS]:
        values = pd.to_numeric(s.runs[metric], errors="coerce")
        low, high = stats.ci(values, ratio=ratio)
        row.update(
            {
                f"{metric}_mean": stats.mean(values),
                f"{metric}_std": stats.std(values),
                f"{metric}_ci95_low": low,
                f"{metric}_ci95_high": high,
            }
        )
    low, high = stats.ci(pd.to_numeric(s.runs["fit_seconds"], errors="coerce"))
    row.update(
        fit_seconds_std=stats.std(pd.to_numeric(s.runs["fit_seconds"], errors="coerce")),
        fit_seconds_ci95_low=low,
        fit_seconds_ci95_high=high,
    )
    for metric in ("epochs_run", "best_epoch", "fit_seconds"):
        row[f"{metric}_mean"] = stats.mean(pd.to_numeric(s.runs[metric], errors="coerce"))
    for metric in VERSUS:
        if s.name == base.name:
            row.update(
                {
                    f"{metric}_diff": math.nan,
                    f"{metric}_diff_ci95_low": math.nan,
                    f"{metric}_diff_ci95_high": math.nan,
                    f"{metric}_p_value": math.nan,
                    f"{metric}_p_adjusted": math.nan,
                    f"{metric}_verdict": "baseline",
                    f"{metric}_runs_needed": math.nan,
                }
            )
            continue
        # the training sets of the two specs' runs overlap as much as the more overlapping one's do
        paired_ratio = max(ratio, _ratio(base.spec))
        result = stats.paired(_by_run(s.runs, metric), _by_run(base.runs, metric), ratio=paired_ratio)
        row["paired_seeds"] = max(row.get("paired_seeds", 0), result.n)
        row.update(
            {
                f"{metric}_diff": result.diff,
                f"{metric}_diff_ci95_low": result.ci_low,
                f"{metric}_diff_ci95_high": result.ci_high,
                f"{metric}_p_value": result.p_value,
                f"_{metric}_paired": result,  # for build(): Holm, verdict and runs needed
            }
        )
        if paired_ratio != ratio:
            row["interval"] += f"; Δ corrected (n_test/n_train {paired_ratio:.2f})"
    row.setdefault("paired_seeds", len(s.runs) if s.name == base.name else 0)
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
    """Per VERSUS metric, over the variants' rows (one family: one baseline, its variants, one metric):
    Holm-adjusted p-values, the verdicts decided on them, and for each "no evidence" the runs that would
    resolve a difference of the observed size (or `min_effect`) with 80% power at the family's level."""
    variants = [row for row in rows if f"_{next(iter(VERSUS))}_paired" in row]
    for metric, lower_is_better in VERSUS.items():
        results_ = [row[f"_{metric}_paired"] for row in variants]
        adjusted = stats.holm([r.p_value for r in results_])
        family = sum(math.isfinite(p) for p in adjusted)
        for row, result, p in zip(variants, results_, adjusted):
            verdict = result.verdict(lower_is_better, p_value=p)
            effect = abs(result.diff) if min_effect is None else abs(min_effect)
            # at the level Holm needs for the smallest p-value of the family (Bonferroni's):
            # reaching it decides
            needed = stats.runs_needed(
                result.sd, effect, level=1 - (1 - level) / max(family, 1), ratio=result.ratio
            )
            row.update(
                {
                    f"{metric}_p_adjusted": p,
                    f"{metric}_verdict": verdict,
                    f"{metric}_runs_needed": needed if verdict == "no evidence" else math.nan,
                }
            )
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


def _pm(row, metric, digits=3):
    """'mean ± CI half-width' (or the mean alone when there is no interval)."""
    centre, low, high = row[f"{metric}_mean"], row[f"{metric}_ci95_low"], row[f"{metric}_ci95_high"]
    if not math.isfinite(centre):
        return "-"
    if not math.isfinite(low):
        return f"{centre:.{digits}f} ± n/a"
    return f"{centre:.{digits}f} ± {(high - low) / 2:.{digits}f}"


def tables(frame):
    """Two narrow text tables: the experiments over seeds, and their paired differences from the baseline."""
    if "rank" in frame:
        return _ranked(frame)
    first = []
    for _, r in frame.iterrows():
        first.append(
            [
                _short(r["experiment"]) + (" *" if r["is_baseline"] else ""),
                r["runs"],
                r["diagnosis"],
                _f(r["train_accuracy_mean"]),
                _pm(r, "test_accuracy"),
                _pm(r, "test_loss"),
                _pm(r, "gap_test_loss"),
                _f(r["epochs_run_mean"], ".0f"),
                _pm(r, "fit_seconds", 1),
            ]
        )
    head = [
        "experiment",
        "n",
        "diagnosis",
        "train acc",
        "test acc ± CI",
        "test loss ± CI",
        "test-train loss ± CI",
        "epochs",
        "fit s ± CI",
    ]
    text = [text_table(head, first)]
    second = []
    for _, r in frame[~frame["is_baseline"]].iterrows():
        for metric in VERSUS:
            low, high = r[f"{metric}_diff_ci95_low"], r[f"{metric}_diff_ci95_high"]
            interval = f"[{low:+.3f}, {high:+.3f}]" if math.isfinite(low) else "n/a"
            second.append(
                [
                    _short(r["experiment"]),
                    r["paired_seeds"],
                    metric,
                    _f(r[f"{metric}_diff"], "+.3f"),
                    interval,
                    _p(r[f"{metric}_p_value"]),
                    _p(r[f"{metric}_p_adjusted"]),
                    r[f"{metric}_verdict"],
                    runs_needed_text(r[f"{metric}_runs_needed"]),
                ]
            )
    if second:
        head = ["experiment", "pairs", "metric", "Δ", "95% CI of Δ", "p", "p Holm", "verdict", "runs needed"]
        text += ["", text_table(head, second)]
    return "\n".join(text)


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
            _pm(r, "val_accuracy"),
            _pm(r, "val_loss"),
            _pm(r, "test_accuracy"),
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
                "val acc ± CI",
                "val loss ± CI",
                "test acc ± CI",
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
                **{name: r[f"{metric}_{column}"] for name, column in DIFFERENCE_COLUMNS.items()},
                "interval": r["interval"],
            }
            for _, r in self.table[~self.table["is_baseline"]].iterrows()
            for metric, lower_is_better in VERSUS.items()
        ]
        columns = ["experiment", "baseline", "metric", "lower_is_better", "pairs", *DIFFERENCE_COLUMNS, "interval"]
        return pd.DataFrame(rows, columns=columns)

    def text(self):
        """The tables as `python -m harness compare` prints them."""
        return tables(self.table)

    def _repr_html_(self):  # a notebook shows the summary table
        return self.summary.to_html(index=False, float_format=lambda v: f"{v:.4f}")


# The differences' columns: name -> the comparisons CSV's column after "<metric>_".
DIFFERENCE_COLUMNS = {
    "diff": "diff",
    "ci95_low": "diff_ci95_low",
    "ci95_high": "diff_ci95_high",
    "p_value": "p_value",
    "p_adjusted": "p_adjusted",
    "verdict": "verdict",
    "runs_needed": "runs_needed",
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
        f"{name}: left out, every run of its current spec failed or diverged (runs.csv has the status and error)"
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


def show(comparison, out=print):
    """Print a comparison's tables and its notes through `out`."""
    table = comparison.table
    out("mean ± 95% CI half-width over runs; * = baseline; intervals (which runs vary, and how):")
    out("\n".join(f"  {interval}" for interval in dict.fromkeys(table["interval"])) + "\n")
    out(tables(table))
    effect = "the observed Δ" if comparison.min_effect is None else f"Δ = {comparison.min_effect:g}"
    out(
        f"\nΔ = experiment − baseline ({comparison.baseline}), paired by "
        f"{'(seed, fold)' if 'fold' in frame_keys(comparison.stored) else 'seed'} "
        "on the runs both have; verdicts on Holm-adjusted p over the variants of each metric; 'no evidence' "
        f"(not a win): p Holm ≥ 0.05; runs needed: pairs that would resolve {effect} with 80% power; "
        "loss and gap: lower is better"
    )
    for note in comparison.notes:
        out(f"note: {note}")


def main(names, root=DEFAULT_ROOT, baseline=None, suite=None, plots=True, current_hashes=None, out=print,
         min_effect=None):
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
