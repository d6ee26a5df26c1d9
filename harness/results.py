"""Results on disk: results/<experiment>/{runs.csv, history.csv, spec.json}.

Every write is atomic (a temporary file renamed over the old one), so an interrupted run
never leaves half a file; saving a run replaces the stored rows of its seed (of its (seed, fold)
with cross-validation, whose rows have a `fold` column; other specs' files have none).
"""

import json
import math
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

RUN_COLUMNS = [
    "experiment",
    "seed",
    "spec_hash",
    "status",
    "error",
    "epochs_run",
    "best_epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "loss_penalty",
    "fit_seconds",
    "seconds_per_epoch",
    "dead_relu_fraction",
    "dead_relu_layer",
    "params",
    "backend",
    "keras_version",
    "backend_version",
    "python_version",
    "numpy_version",
    "sklearn_version",
    "pipeline",
    "deterministic",
    "pid",
    "peak_rss_mb",
    "finished_at",
]
HISTORY_KEYS = ["experiment", "seed", "spec_hash", "epoch"]


def experiment_dir(root, name):
    return Path(root) / name


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes files 0600; results are ordinary files
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_temp_files(root, name):
    """Delete the temporary files a killed process left mid-write in an experiment's folder."""
    for stem in ("runs.csv", "history.csv", "spec.json"):
        for path in experiment_dir(root, name).glob(f".{stem}.*.tmp"):
            path.unlink(missing_ok=True)


def write_frame(path, frame):
    atomic_write(path, frame.to_csv(index=False))


def read_csv(path):
    """A stored CSV, or None when there is none yet."""
    return pd.read_csv(path, dtype={"spec_hash": str}) if Path(path).exists() else None


def write_spec(root, spec):
    atomic_write(experiment_dir(root, spec.name) / "spec.json", spec.to_json() + "\n")


def run_keys(frame):
    """The columns that identify a run in runs.csv or history.csv rows: seed, and fold with cv."""
    return ["seed", "fold"] if "fold" in frame.columns else ["seed"]


def save_run(root, row, history):
    """Store one finished run (a dict) and its per-epoch rows, replacing the old rows of its seed
    (of its seed and fold, when the row has a fold)."""
    folder = experiment_dir(root, row["experiment"])
    seed, fold = row["seed"], row.get("fold")
    # history first: runs.csv marks the run done, so a kill between the two writes only means a re-run
    hist = _replace_run(read_csv(folder / "history.csv"), pd.DataFrame(history), seed, fold)
    if len(hist.columns):  # nothing to write for a first run that failed before any epoch
        write_frame(folder / "history.csv", hist.sort_values([*run_keys(hist), "epoch"], kind="stable"))
    runs = _replace_run(read_csv(folder / "runs.csv"), pd.DataFrame([row]), seed, fold)
    columns = [*RUN_COLUMNS[:2], "fold", *RUN_COLUMNS[2:]] if "fold" in runs else RUN_COLUMNS
    write_frame(folder / "runs.csv", runs.reindex(columns=columns + [c for c in runs if c not in columns]))


def save_runs(root, finished):
    """Store many finished runs [(row, history)] at once (a group ends at once): one write of each
    file per experiment instead of one per run; the files come out as `save_run` run by run leaves them."""
    if any("fold" in row for row, _ in finished):  # cross-validation runs are stored run by run
        for row, history in finished:
            save_run(root, row, history)
        return
    by_name = {}
    for row, history in finished:
        by_name.setdefault(row["experiment"], []).append((row, history))
    for name, pairs in by_name.items():
        folder = experiment_dir(root, name)
        stored = read_csv(folder / "runs.csv")
        if stored is not None and "fold" in stored:
            for row, history in pairs:
                save_run(root, row, history)
            continue
        seeds = {row["seed"] for row, _ in pairs}
        new_history = pd.DataFrame([h for _, history in pairs for h in history])
        hist = _replace_seeds(read_csv(folder / "history.csv"), new_history, seeds)
        if len(hist.columns):
            write_frame(folder / "history.csv", hist.sort_values(["seed", "epoch"], kind="stable"))
        runs = _replace_seeds(read_csv(folder / "runs.csv"), pd.DataFrame([row for row, _ in pairs]), seeds)
        extra = [c for c in runs.columns if c not in RUN_COLUMNS]
        write_frame(folder / "runs.csv", runs.reindex(columns=RUN_COLUMNS + extra))


def _replace_seeds(old, new, seeds):
    if old is None or old.empty:
        return new.sort_values("seed", kind="stable").reset_index(drop=True) if not new.empty else new
    kept = old[~old["seed"].isin(seeds)]
    if new.empty:
        return kept
    frames = [f for f in (kept, new) if not f.empty]
    return pd.concat(frames, ignore_index=True).sort_values("seed", kind="stable").reset_index(drop=True)


def _replace_run(old, new, seed, fold=None):
    if old is None or old.empty:
        return new
    if "fold" in old:
        same = old["fold"].isna() if fold is None else old["fold"] == fold
    else:
        same = fold is None
    kept = old[~((old["seed"] == seed) & same)]
    if new.empty:
        return kept
    frames = [f for f in (kept, new) if not f.empty]
    joined = pd.concat(frames, ignore_index=True)
    return joined.sort_values(run_keys(joined), kind="stable").reset_index(drop=True)


def stored_runs(root, name, spec_hash=None):
    """The runs.csv rows of an experiment (only those of `spec_hash` if given); empty if none."""
    runs = read_csv(experiment_dir(root, name) / "runs.csv")
    if runs is None:
        return pd.DataFrame(columns=RUN_COLUMNS)
    if spec_hash is not None:
        runs = runs[runs["spec_hash"] == spec_hash]
    return runs


def stored_history(root, name, spec_hash=None):
    history = read_csv(experiment_dir(root, name) / "history.csv")
    if history is None:
        return pd.DataFrame(columns=HISTORY_KEYS)
    if spec_hash is not None:
        history = history[history["spec_hash"] == spec_hash]
    return history


def stored_spec(root, name):
    path = experiment_dir(root, name) / "spec.json"
    return json.loads(path.read_text()) if path.exists() else None


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def failed_row(spec, seed, error, fold=None, **extra):
    """The runs.csv row of a run that raised: status 'failed' and the first line of its error."""
    return {
        "experiment": spec.name,
        "seed": seed,
        **({} if fold is None else {"fold": fold}),
        "spec_hash": spec.hash,
        "status": "failed",
        "error": str(error).splitlines()[0][:500] if str(error) else "",
        **extra,
        "finished_at": now(),
    }


def finished_seeds(root, name, spec_hash):
    """Seeds already stored for this exact spec, ok or diverged (a seeded run diverges again);
    failed runs are tried again."""
    runs = stored_runs(root, name, spec_hash)
    return set(runs.loc[runs["status"].isin(["ok", "diverged"]), "seed"].astype(int))


def finished_runs(root, name, spec_hash):
    """(seed, fold) of the runs already stored for this exact spec, ok or diverged; fold is None
    without cross-validation. Failed runs are tried again."""
    runs = stored_runs(root, name, spec_hash)
    runs = runs[runs["status"].isin(["ok", "diverged"])]
    folds = runs["fold"] if "fold" in runs else pd.Series(math.nan, index=runs.index)
    return {(int(seed), None if pd.isna(fold) else int(fold)) for seed, fold in zip(runs["seed"], folds)}


def _is_cv(group):
    return "fold" in group and group["fold"].notna().any()


def summary(runs):
    """Per experiment: ok runs, mean ± std over its runs (seeds, or seeds x folds with cv) of loss and
    accuracy (train, val, test), and not_ok ("1 diverged"). A cv experiment also gets `folds`."""
    rows = []
    for name, group in runs.groupby("experiment", sort=False):
        ok = group[group["status"] == "ok"]
        row = {"experiment": name, "runs": len(ok)}
        if _is_cv(group):  # runs = seeds x folds: say how many folds they cover
            row["folds"] = int(ok["fold"].nunique())
        for part in ("train", "val", "test"):
            for metric in ("loss", "accuracy"):
                values = (
                    ok[f"{part}_{metric}"].dropna() if f"{part}_{metric}" in ok else pd.Series(dtype=float)
                )
                if len(values):
                    std = values.std(ddof=1) if len(values) > 1 else 0.0
                    row[f"{part}_{metric}"] = f"{values.mean():.4f} ± {std:.4f}"
        not_ok = group.loc[group["status"] != "ok", "status"].value_counts()
        if len(not_ok):  # e.g. "2 diverged": left out of the means
            row["not_ok"] = ", ".join(f"{count} {status}" for status, count in not_ok.items())
        rows.append(row)
    table = pd.DataFrame(rows)
    if "folds" in table:  # an int column, blank for experiments without cv
        table["folds"] = table["folds"].map(lambda n: "" if pd.isna(n) else str(int(n)))
        table = table[
            ["experiment", "runs", "folds", *[c for c in table if c not in ("experiment", "runs", "folds")]]
        ]
    return table.fillna("")


def summary_title(runs):
    """The line above `summary(runs)`: what its ± spreads over (seeds, or seeds x folds with cv)."""
    cv = [name for name, group in runs.groupby("experiment", sort=False) if _is_cv(group)]
    if not cv:
        return "mean ± std over seeds"
    if len(cv) == runs["experiment"].nunique():
        return "mean ± std over seeds x folds"
    return f"mean ± std over seeds (over seeds x folds for the cv experiments: {', '.join(cv)})"
