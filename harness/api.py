"""The harness from Python (a script or a notebook): run, compare, report and load experiments.

The same steps as the command line, returning data instead of printing it. An experiment is
named (as `python -m harness list` shows it) or given as a plain dict, checked exactly as a
module's (a mistake raises HarnessError, a SpecError for a field, with the text the CLI prints).
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import comparison, registry
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
    listed = registry.discover(experiment_dirs)
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
    engine="auto",
    jobs=None,
    backend=None,
    force=False,
    quiet=False,
    experiment_dirs=(),
):
    """Run experiments over their seeds (stored seeds are skipped unless `force`) and return their
    runs.csv rows, one per (experiment, seed) asked for, trained as `python -m harness run` trains
    them: `engine` "auto" (the vectorized engine where it applies), "vectorized" or "per-run";
    `jobs`: worker processes (default: the cores; 1 trains in this process). Safe at a script's top
    level and in a notebook. Failed runs are rows with status "failed", not exceptions."""
    from harness.progress import Progress
    from harness.training import scheduler

    specs = specs_for(experiments, seeds, overrides, experiment_dirs, results)
    progress = None if quiet else Progress(sys.stderr)
    options = scheduler.RunOptions(
        results, jobs=jobs, backend=backend, engine=engine, progress=progress, force=force
    )
    scheduler.run(specs, options)
    frames = [
        _runs_of(results, s).query("seed in @seeds", local_dict={"seeds": list(s.seeds)}) for s in specs
    ]
    return pd.concat(frames, ignore_index=True)


def _runs_of(root, spec):
    runs = store.stored_runs(root, spec.name, spec.hash)
    keys = store.run_keys(runs)  # seed, and fold with cross-validation
    return runs.drop_duplicates(keys, keep="last").sort_values(keys, kind="stable")


def _compared(experiments, suite, baseline, results, experiment_dirs):
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    suites = [suite] if isinstance(suite, str) else list(suite or [])
    chosen, hashes = comparison.select(registry.discover(experiment_dirs), results, names, suites or None)
    label_suite = None if names or not suites else "+".join(suites)
    return comparison.compute(chosen, results, baseline=baseline, suite=label_suite, current_hashes=hashes)


def compare(
    experiments=(), *, suite=None, baseline=None, results=DEFAULT_RESULTS, write=False, experiment_dirs=()
):
    """Compare stored experiments (names or glob patterns, and/or every experiment tagged `suite`:
    a tag or a list) as `python -m harness compare` does, printing nothing; returns a
    harness.comparison.Comparison (`.summary`, `.differences`, `.table`, `.notes`, `.text()`).
    `write=True` also writes results/comparisons/<label>.csv as the CLI does."""
    compared = _compared(experiments, suite, baseline, results, experiment_dirs)
    if write:
        comparison.write(compared.table, results, compared.label)
    return compared


def write_report(experiments=(), *, suite=None, baseline=None, results=DEFAULT_RESULTS, experiment_dirs=()):
    """Write the comparison's HTML page and CSV as `python -m harness report` does; returns the
    page's path."""
    from harness import report as reporting

    compared = _compared(experiments, suite, baseline, results, experiment_dirs)
    comparison.write(compared.table, results, compared.label)
    return reporting.write(compared, results)


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
            f"{comparison.run_command(name, results, store.stored_spec(results, name))}"
        )
    spec = store.stored_spec(results, name) or {}
    runs = store.read_csv(folder / "runs.csv")
    # no spec.json, or its data file is gone: the latest run's spec
    current = (comparison.spec_hash(spec) if spec else None) or str(runs["spec_hash"].iloc[-1])
    history = store.stored_history(results, name)
    if not all_specs:
        runs = runs[runs["spec_hash"] == current].reset_index(drop=True)
        history = history[history["spec_hash"] == current].reset_index(drop=True)
    return Loaded(name, spec, current, runs, history)
