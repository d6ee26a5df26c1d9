"""The harness from Python (a notebook): run, compare and load experiments as DataFrames.

The same steps as the command line, returning data instead of printing it. An experiment is
named (as `python -m harness list` shows it) or given as a plain dict, checked exactly as a
module's (a mistake raises HarnessError, a SpecError for a field, with the text the CLI prints).
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import compare as comparing
from harness import registry
from harness import results as store
from harness.errors import HarnessError
from harness.spec import from_dict, set_name

DEFAULT_RESULTS = "results"


def specs_for(experiments, seeds=None, overrides=None, experiment_dirs=(), root=DEFAULT_RESULTS):
    """Resolved specs for names, glob patterns or experiment dicts (one or a list); `seeds`: a
    count (seeds 0..N-1) or a list; `overrides`: {path: value} applied as `run --set` does.

    A dict variant's base may be a registry experiment, a dict before it in the same call, or
    an experiment stored under `root` (one run from a dict in an earlier notebook cell)."""
    items = experiments if isinstance(experiments, (list, tuple)) else [experiments]
    if not items:
        raise HarnessError("name at least one experiment (a name, a glob pattern or a spec dict)")
    listed = registry.load(experiment_dirs)
    known = dict(listed)
    specs = []
    for item in items:
        if isinstance(item, dict):
            base = item.get("base")
            if isinstance(base, str) and base not in known and store.stored_spec(root, base):
                known[base] = from_dict(
                    store.stored_spec(root, base), source=str(Path(root) / base / "spec.json")
                )
            resolved = registry.resolve_one(item, known)
            for spec in resolved:  # its results folder would mix two experiments' runs
                if spec.name in listed and listed[spec.name].hash != spec.hash:
                    raise HarnessError(
                        f"the dict {spec.name!r} differs from the experiment of that name in "
                        f"{listed[spec.name].source}; give it another name"
                    )
            known.update({s.name: s for s in resolved})
            specs += resolved
        elif isinstance(item, str):
            specs += registry.select(known, [item])
        else:
            raise HarnessError(f"an experiment is a name or a spec dict, got {type(item).__name__}: {item!r}")
    if overrides:  # named as `run --set` names them
        specs = [s.with_overrides(overrides, name=set_name(s.name, overrides)) for s in specs]
    if seeds is not None:
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds <= 0:
                raise HarnessError(f"seeds={seeds}: must be a positive number of seeds")
            seeds = range(seeds)
        specs = [s.with_seeds(seeds) for s in specs]
    return list({s.name: s for s in specs}.values())


def run(
    experiments,
    seeds=None,
    results=DEFAULT_RESULTS,
    *,
    overrides=None,
    jobs=None,
    backend=None,
    force=False,
    quiet=False,
    experiment_dirs=(),
):
    """Run experiments over their seeds (stored seeds are skipped unless `force`) and return their
    runs.csv rows, one per (experiment, seed) asked for. `jobs`: worker processes (default: the
    cores; 1 trains in this process). Failed runs are rows with status "failed", not exceptions."""
    from harness import executor
    from harness.progress import Progress

    specs = specs_for(experiments, seeds, overrides, experiment_dirs, results)
    executor.run(
        specs,
        results,
        jobs=jobs,
        backend=backend,
        force=force,
        progress=None if quiet else Progress(sys.stderr),
    )
    frames = [
        _runs_of(results, s).query("seed in @seeds", local_dict={"seeds": list(s.seeds)}) for s in specs
    ]
    return pd.concat(frames, ignore_index=True)


def _runs_of(root, spec):
    runs = store.stored_runs(root, spec.name, spec.hash)
    keys = store.run_keys(runs)  # seed, and fold with cross-validation
    return runs.drop_duplicates(keys, keep="last").sort_values(keys, kind="stable")


@dataclass
class Comparison:
    """A comparison as DataFrames: `table` has the comparisons CSV's columns (one row per experiment,
    the baseline first); `summary` the printed first table's numbers; `differences` one row per
    (experiment, metric) against the baseline with its paired 95% interval and verdict."""

    table: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    baseline: str
    label: str
    left_out: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def text(self):
        """The tables as `python -m harness compare` prints them."""
        return comparing.tables(self.table)

    def _repr_html_(self):  # a notebook shows the summary table
        return self.summary.to_html(index=False, float_format=lambda v: f"{v:.4f}")


def _summary(frame):
    metrics = ["train_accuracy", "test_accuracy", "test_loss", "gap_test_loss", "fit_seconds"]
    cols = ["experiment", "is_baseline", "runs", "diagnosis"]
    cols += [f"{m}_{s}" for m in metrics for s in ("mean", "ci95_low", "ci95_high")]
    cols += ["epochs_run_mean"]
    return frame[[c for c in ["rank", *cols] if c in frame]].reset_index(drop=True)


def _differences(frame):
    rows = []
    for _, r in frame[~frame["is_baseline"]].iterrows():
        for metric, lower_is_better in comparing.VERSUS.items():
            rows.append(
                {
                    "experiment": r["experiment"],
                    "baseline": r["baseline"],
                    "metric": metric,
                    "lower_is_better": lower_is_better,
                    "pairs": r["paired_seeds"],
                    "diff": r[f"{metric}_diff"],
                    "ci95_low": r[f"{metric}_diff_ci95_low"],
                    "ci95_high": r[f"{metric}_diff_ci95_high"],
                    "p_value": r[f"{metric}_p_value"],
                    "p_adjusted": r[f"{metric}_p_adjusted"],
                    "verdict": r[f"{metric}_verdict"],
                    "runs_needed": r[f"{metric}_runs_needed"],
                    "interval": r["interval"],
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "experiment",
            "baseline",
            "metric",
            "lower_is_better",
            "pairs",
            "diff",
            "ci95_low",
            "ci95_high",
            "p_value",
            "p_adjusted",
            "verdict",
            "runs_needed",
            "interval",
        ],
    )


def compare(
    experiments=(), *, suite=None, baseline=None, results=DEFAULT_RESULTS, write=False, experiment_dirs=()
):
    """Compare stored experiments (names or glob patterns, and/or every experiment tagged `suite`:
    a tag or a list) as `python -m harness compare` does, printing nothing. `write=True` also
    writes results/comparisons/<label>.csv as the CLI does."""
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    suites = [suite] if isinstance(suite, str) else list(suite or [])
    chosen, _ = comparing.select(registry.load(experiment_dirs), results, names, suites or None)
    label_suite = None if names or not suites else "+".join(suites)
    computed = comparing.compute(chosen, results, baseline=baseline, suite=label_suite)
    if write:
        comparing.write(computed.frame, results, computed.label)
    notes = []
    comparing.show(
        computed, results, out=lambda line: notes.append(line) if line.startswith("note:") else None
    )
    return Comparison(
        table=computed.frame,
        summary=_summary(computed.frame),
        differences=_differences(computed.frame),
        baseline=computed.baseline,
        label=computed.label,
        left_out=list(computed.left_out),
        notes=notes,
    )


@dataclass
class Loaded:
    """One experiment's stored results: its spec (as spec.json has it), its runs.csv rows and its
    per-epoch history, of the current spec only unless loaded with `all_specs=True`."""

    name: str
    spec: dict
    spec_hash: str
    runs: pd.DataFrame
    history: pd.DataFrame


def load(name, results=DEFAULT_RESULTS, *, all_specs=False):
    """The stored runs and history of experiment `name` under `results` (every status: see `status`)."""
    folder = Path(results) / name
    if not (folder / "runs.csv").exists():
        raise HarnessError(
            f"experiment {name!r} has no stored runs in {folder}; run it first: "
            f"{comparing.run_command(name, results, store.stored_spec(results, name))}"
        )
    spec = store.stored_spec(results, name) or {}
    runs = store.read_csv(folder / "runs.csv")
    # no spec.json, or its data file is gone: the latest run's spec
    current = (comparing.spec_hash(spec) if spec else None) or str(runs["spec_hash"].iloc[-1])
    history = store.stored_history(results, name)
    if not all_specs:
        runs = runs[runs["spec_hash"] == current].reset_index(drop=True)
        history = history[history["spec_hash"] == current].reset_index(drop=True)
    return Loaded(name, spec, current, runs, history)
