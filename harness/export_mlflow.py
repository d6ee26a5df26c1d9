"""Stored runs into MLflow: one parent run per experiment, one child run per run (seed, or (seed, fold)
with cv).

A parent carries the experiment's spec (flattened, as params), its means and 95% interval bounds
and its paired differences from the baseline in both scopes (this data set or split; new data of this
size) with the probability of improvement (metrics), and its spec hash, diagnosis, scopes and verdicts
(tags); artifacts: spec.json, its learning curves and the comparison's HTML report. A child
carries one run's final numbers and its per-epoch history as metric steps. Runs are found again
by tags (experiment, spec hash, seed, fold), so exporting twice updates them and adds none; a run
made again since (another finished_at) replaces its child run. Reads stored CSVs only (no Keras);
MLflow is the optional extra `mlflow`.
"""

import logging
import math
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd

from harness import __version__, comparison, plots, report, results
from harness.errors import HarnessError
from harness.spec import TRAINING_SECTIONS

INSTALL = "pip install -e '.[mlflow]'  (or: pip install mlflow)"
KIND, EXPERIMENT, SPEC_HASH, SEED, FOLD, FINISHED = (
    "harness.kind",
    "harness.experiment",
    "harness.spec_hash",
    "harness.seed",
    "harness.fold",
    "harness.finished_at",
)
PARENT = "mlflow.parentRunId"
# Final per-run numbers a child run logs (those runs.csv has), besides the history's per-epoch ones.
FINAL = [
    *comparison.METRICS,
    "loss_penalty",
    "epochs_run",
    "best_epoch",
    "fit_seconds",
    "seconds_per_epoch",
    "dead_relu_fraction",
    "params",
    "peak_rss_mb",
]
RUN_TAGS = [
    "status",
    "error",
    "backend",
    "keras_version",
    "backend_version",
    "python_version",
    "numpy_version",
    "sklearn_version",
    "pipeline",
    "deterministic",
]
BATCH = 500  # metrics per log_batch call (MLflow accepts up to 1000)


def require():
    """Import MLflow, or tell the user how to install the extra (exit status 2 through HarnessError)."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise HarnessError(f"export mlflow needs MLflow, an optional extra; install it: {INSTALL}") from exc


def default_uri(root):
    """The local SQLite store beside the runs: sqlite:///<root>/mlflow.db (absolute)."""
    return f"sqlite:///{(Path(root) / 'mlflow.db').resolve()}"


def _millis(stamp):
    """An ISO time (runs.csv's finished_at) in milliseconds since the epoch; None if absent."""
    try:
        return int(datetime.fromisoformat(str(stamp)).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def params_of(spec):
    """{dotted.path: text} of a stored spec's training sections, plus its base and seeds."""
    flat = report.flatten({key: spec.get(key) for key in TRAINING_SECTIONS})
    out = {path: _text(value) for path, value in flat.items()}
    if spec.get("base"):
        out["base"] = spec["base"]
    return out


def _text(value):
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text[:6000]  # MLflow's limit for a param value


def _quiet():
    """MLflow's and alembic's INFO lines (database set-up, run links) are not the user's business."""
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _experiment_id(client, name, uri):
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in the working directory
        location = (Path(uri[len("sqlite:///") :]).parent / "mlflow-artifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def _find(client, experiment_id, filters, match):
    """Active runs whose tags equal `filters` and satisfy `match(run)`."""
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in filters.items())
    runs = client.search_runs([experiment_id], filter_string=query, max_results=1000)
    return [r for r in runs if match(r)]


def _metrics(client, run_id, values, timestamp, existing=None):
    """Log {key: value} at step 0 (or {(key, step): value}), skipping non-finite values and
    those `existing` already holds."""
    from mlflow.entities import Metric

    batch = []
    for key, value in values.items():
        key, step = key if isinstance(key, tuple) else (key, 0)
        value = _number(value)
        if value is None or (existing is not None and existing.get(key) == value):
            continue
        batch.append(Metric(key, value, timestamp, int(step)))
    for start in range(0, len(batch), BATCH):
        client.log_batch(run_id, metrics=batch[start : start + BATCH])
    return len(batch)


def _params(client, run_id, values, existing):
    from mlflow.entities import Param

    batch = [Param(k, v) for k, v in values.items() if k not in existing]
    for start in range(0, len(batch), 100):
        client.log_batch(run_id, params=batch[start : start + 100])


def _tags(client, run_id, values):
    from mlflow.entities import RunTag

    batch = [RunTag(k, _text(v)) for k, v in values.items() if v is not None and str(v) != "nan"]
    for start in range(0, len(batch), 100):
        client.log_batch(run_id, tags=batch[start : start + 100])


def _parent_metrics(row):
    """The comparison row's numbers: means, spreads and interval bounds in both scopes, the paired
    differences with their raw and Holm-adjusted p and runs needed per scope, and the probability of
    improvement with its interval and counts."""
    numbers = ("_mean", "_std", "_ci95_low", "_ci95_high", "_diff", "_p_value", "_p_adjusted", "_runs_needed")
    numbers += ("_wins", "_ties", "_losses", "_prob_improvement")
    keep = [c for c in comparison.columns() if c.endswith(numbers)]
    keep += ["runs", "paired_seeds", "paired_units", "overlap_ratio", "diff_overlap_ratio"]
    return {c: row.get(c) for c in keep if c in row}


def export(
    names, root, tracking_uri=None, experiment="harness", baseline=None, suite=None, say=lambda text: None
):
    """Export the compared experiments `names` (as compare selects them) under `root` to MLflow;
    returns {"parents": [run ids], "children": {name: {key: run id}}, "created": n, "replaced": n}, a
    key being the seed, or (seed, fold) for a cv experiment's runs."""
    require()
    _quiet()
    from mlflow.tracking import MlflowClient

    compared = comparison.compute(names, root, baseline=baseline, suite=suite)
    csv_path = comparison.write(compared.table, root, compared.label)
    page = report.write(compared, root)
    uri = tracking_uri or default_uri(root)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _experiment_id(client, experiment, uri)
    rows = {r["experiment"]: r for r in compared.table.to_dict("records")}
    outcome = {"parents": [], "children": {}, "created": 0, "replaced": 0}
    with tempfile.TemporaryDirectory() as scratch:
        for stored in compared.stored:
            parent, created = _export_parent(client, experiment_id, stored, rows[stored.name], root, compared)
            outcome["created"] += created
            outcome["parents"].append(parent)
            children, made, replaced = _export_children(client, experiment_id, stored, parent, root)
            outcome["children"][stored.name] = children
            outcome["created"] += made
            outcome["replaced"] += replaced
            folder = Path(scratch) / stored.name
            folder.mkdir()
            curves = plots.curves(stored.history, folder / "curves.png", title=stored.name)
            spec_json = results.experiment_dir(root, stored.name) / "spec.json"
            for artifact in (spec_json, curves, page):
                if Path(artifact).exists():
                    client.log_artifact(parent, str(artifact))
    kept = len(outcome["parents"]) + sum(len(c) for c in outcome["children"].values())
    say(
        f"mlflow: {len(outcome['parents'])} experiment run(s) with {kept - len(outcome['parents'])} "
        "seed"
        f"{'/fold' if any(isinstance(k, tuple) for c in outcome['children'].values() for k in c) else ''} "
        f"run(s) in experiment {experiment!r} of {uri}: "
        f"{outcome['created']} new, {outcome['replaced']} replaced "
        f"(runs made again), the rest updated in place"
    )
    say(f"wrote:\n  {page}\n  {csv_path}")
    say(f"see them: mlflow ui --backend-store-uri {uri}")
    return outcome


def _export_parent(client, experiment_id, stored, row, root, compared):
    """The experiment's parent run id (found or created) with its params, metrics and tags set."""
    found = _find(
        client,
        experiment_id,
        {KIND: "experiment", SPEC_HASH: stored.spec_hash},
        lambda r: r.data.tags.get(EXPERIMENT) == stored.name,
    )
    all_runs = results.stored_runs(root, stored.name, stored.spec_hash)
    stamps = [s for s in (_millis(t) for t in all_runs.get("finished_at", [])) if s is not None]
    last = max(stamps) if stamps else None
    starts = [
        s - int(1000 * (_number(f) or 0))
        for s, f in zip(
            (_millis(t) for t in all_runs.get("finished_at", [])), all_runs.get("fit_seconds", [])
        )
        if s is not None
    ]
    if found:
        run_id, created = found[0].info.run_id, 0
        existing_params, existing_metrics = found[0].data.params, found[0].data.metrics
    else:
        run = client.create_run(
            experiment_id,
            start_time=min(starts) if starts else None,
            tags={KIND: "experiment", SPEC_HASH: stored.spec_hash, EXPERIMENT: stored.name},
            run_name=stored.name,
        )
        run_id, created, existing_params, existing_metrics = run.info.run_id, 1, {}, {}
    _params(client, run_id, params_of(stored.spec), existing_params)
    _metrics(client, run_id, _parent_metrics(row), last, existing_metrics)
    verdicts = {f"harness.verdict.{m}": row.get(f"{m}_verdict_words") for m in comparison.VERSUS}
    verdicts.update({f"harness.verdict.{m}.this": row.get(f"{m}_verdict") for m in comparison.VERSUS})
    verdicts.update({f"harness.verdict.{m}.new": row.get(f"{m}_new_verdict") for m in comparison.VERSUS})
    _tags(
        client,
        run_id,
        {
            "harness.baseline": compared.baseline,
            "harness.is_baseline": str(bool(row.get("is_baseline"))).lower(),
            "harness.comparison": compared.label,
            "harness.diagnosis": row.get("diagnosis"),
            "harness.scope": row.get("scope"),
            "harness.scope_new": row.get("scope_new") or None,
            "harness.seeds": row.get("seeds"),
            "harness.tags": ",".join(stored.spec.get("tags") or []),
            "harness.version": __version__,
            "mlflow.note.content": stored.spec.get("description") or None,
            **verdicts,
        },
    )
    client.set_terminated(run_id, "FINISHED", end_time=last)
    return run_id, created


def _key(seed, fold):
    """A child's key: the seed, or (seed, fold) for a cv run."""
    return int(seed) if fold is None else (int(seed), int(fold))


def _export_children(client, experiment_id, stored, parent, root):
    """One child run per run of the current spec (its latest row), keyed by seed, or by (seed, fold)
    with cross-validation: ({key: run id}, created, replaced)."""
    runs = results.stored_runs(root, stored.name, stored.spec_hash)
    keys = results.run_keys(runs)
    runs = runs.drop_duplicates(keys, keep="last")
    history = results.stored_history(root, stored.name, stored.spec_hash)
    existing = {}
    for run in _find(client, experiment_id, {KIND: "seed", PARENT: parent}, lambda r: True):
        existing.setdefault((run.data.tags.get(SEED), run.data.tags.get(FOLD)), []).append(run)
    children, created, replaced = {}, 0, 0
    for row in runs.to_dict("records"):
        seed = int(row["seed"])
        fold = None if "fold" not in row or pd.isna(row["fold"]) else int(row["fold"])
        key = _key(seed, fold)
        finished = str(row.get("finished_at"))
        old = existing.pop((str(seed), None if fold is None else str(fold)), [])
        same = [r for r in old if r.data.tags.get(FINISHED) == finished]
        for stale in [r for r in old if r not in same[:1]]:  # the run was made again: its old child goes
            client.delete_run(stale.info.run_id)
            replaced += 1
        if same:
            children[key] = same[0].info.run_id
            continue
        end = _millis(finished)
        start = end - int(1000 * (_number(row.get("fit_seconds")) or 0)) if end is not None else None
        status = "FINISHED" if row.get("status") == "ok" else "FAILED"
        which = {"seed": str(seed)} if fold is None else {"seed": str(seed), "fold": str(fold)}
        run = client.create_run(
            experiment_id,
            start_time=start,
            tags={
                KIND: "seed",
                PARENT: parent,
                EXPERIMENT: stored.name,
                SPEC_HASH: stored.spec_hash,
                SEED: str(seed),
                **({} if fold is None else {FOLD: str(fold)}),
                FINISHED: finished,
            },
            run_name=f"{stored.name} seed {seed}" + ("" if fold is None else f" fold {fold}"),
        )
        run_id = run.info.run_id
        created += 1
        _params(client, run_id, which, {})
        _tags(client, run_id, {f"harness.{k}": row.get(k) for k in RUN_TAGS if row.get(k) not in ("", None)})
        _metrics(client, run_id, {k: row.get(k) for k in FINAL}, end)
        mine = history[history["seed"] == seed] if "seed" in history else pd.DataFrame()
        if fold is not None and "fold" in mine:
            mine = mine[mine["fold"] == fold]
        per_epoch = {}
        for column in [c for c in mine.columns if c not in (*results.HISTORY_KEYS, "fold")]:
            values = pd.to_numeric(mine[column], errors="coerce")
            for epoch, value in zip(mine["epoch"], values):
                per_epoch[(column, int(epoch))] = value
        _metrics(client, run_id, per_epoch, end)
        client.set_terminated(run_id, status, end_time=end)
        children[key] = run_id
    for leftover in [r for runs_ in existing.values() for r in runs_]:  # runs no longer stored
        client.delete_run(leftover.info.run_id)
        replaced += 1
    return children, created, replaced
