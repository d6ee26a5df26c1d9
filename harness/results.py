"""Results on disk: results/<experiment>/{runs.csv, history.csv, spec.json}.

Every write is atomic (a temporary file renamed over the old one), so an interrupted run
never leaves half a file; saving a run replaces the stored rows of its seed (of its (seed, fold)
with cross-validation, whose rows have a `fold` column; other specs' files have none). Every
change to a folder's files happens under an exclusive lock on that folder, so any number of
processes may store into one results folder at once. A damaged file is reported, never overwritten.
"""

import contextlib
import csv
import fcntl
import io
import json
import os
import signal
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError

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


def atomic_write(path, content, binary=False):
    """Write `content` (text; bytes such as a PNG with `binary`) to a temporary file beside `path`,
    then rename it over `path`: a reader never sees half a file. The file gets the ordinary umask mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes files 0600; results are ordinary files
        with os.fdopen(fd, "wb" if binary else "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _owner_alive(temp_name):
    """Whether the process that named a temporary file `.<file>.<pid>-<random>.tmp` still runs.
    A name without a pid (an older harness's) counts as a dead owner's."""
    pid = temp_name[: -len(".tmp")].rsplit(".", 1)[-1].split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_temp_files(root, name):
    """Delete the temporary files a killed process left mid-write in an experiment's folder;
    those of a process still running (another invocation writing now) are left alone."""
    for stem in ("runs.csv", "history.csv", "spec.json"):
        for path in experiment_dir(root, name).glob(f".{stem}.*.tmp"):
            if not _owner_alive(path.name):
                path.unlink(missing_ok=True)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_held = {}  # folder -> depth of the lock this process holds on it


@contextlib.contextmanager
def locked(folder):
    """Hold the exclusive lock of an experiment folder (flock on the folder itself, so no lock
    file appears); re-entrant within a process."""
    folder = Path(folder)
    key = str(folder.resolve())
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held[key] = 1
        try:
            with _signals_deferred():
                yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C, SIGTERM and SIGHUP arriving in the block take effect when it ends, so a store is
    never left half done (in the main thread; handlers can only be set there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught, previous = [], {}
    for signum in _STOP_SIGNALS:
        if signal.getsignal(signum) is not None:  # None: a handler set outside Python, left alone
            previous[signum] = signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def write_frame(path, frame):
    atomic_write(path, frame.to_csv(index=False))


REQUIRED = {"runs.csv": ["experiment", "seed", "spec_hash", "status"], "history.csv": HISTORY_KEYS}


def damaged(path, what):
    return HarnessError(
        f"{path} is damaged: {what}. It was left as it is. Repair it, or move it aside "
        f"(mv '{path}' '{path}.damaged') and run again: the runs it held then run again"
    )


def read_csv(path):
    """A stored CSV, or None when there is none yet; a damaged one (unreadable bytes, bad quoting,
    a header without the key columns, a row cut short) raises HarnessError naming the file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise damaged(path, f"it is not text (byte {exc.start} is not UTF-8)") from None
    if not text.strip():
        raise damaged(path, "it is empty")
    if not text.endswith("\n"):
        raise damaged(path, "its last row is cut short (no line end): a crash or a full disk cut it")
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(rows)
        for row in rows:
            if len(row) != len(header):
                raise damaged(
                    path,
                    f"row {rows.line_num} has {len(row)} fields, the header {len(header)}"
                    + (": the row is cut short" if len(row) < len(header) else ""),
                )
    except csv.Error as exc:
        raise damaged(path, f"bad CSV near line {rows.line_num}: {exc}") from None
    missing = [c for c in REQUIRED.get(path.name, []) if c not in header]
    if missing:
        raise damaged(path, f"its header lacks {', '.join(missing)} (header: {','.join(header)[:200]})")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={"spec_hash": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise damaged(path, str(exc).splitlines()[0]) from None
    for column in ("seed", "epoch"):
        if column in frame and len(frame) and not pd.api.types.is_numeric_dtype(frame[column]):
            raise damaged(path, f"column {column!r} holds values that are not numbers")
    return frame


def check_readable(root, name):
    """Read an experiment's stored CSVs now (before anything trains), so a damaged one stops the
    command before a run is lost to it."""
    folder = experiment_dir(root, name)
    for file in ("runs.csv", "history.csv"):
        read_csv(folder / file)
    if (folder / "spec.json").exists():
        try:
            json.loads((folder / "spec.json").read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise damaged(folder / "spec.json", f"not JSON: {exc}") from None


def check_writable(root, name):
    """Create an experiment's folder and a file in it now: an unwritable results folder stops the
    command before anything trains."""
    folder = experiment_dir(root, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".probe.{os.getpid()}-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise HarnessError(
            f"cannot write results to {folder}: {exc.strerror or exc}; make it writable or choose "
            "another place with --results DIR"
        ) from None


def run_keys(frame):
    """The columns that identify a run in runs.csv or history.csv rows: seed, and fold with cv."""
    return ["seed", "fold"] if "fold" in frame.columns else ["seed"]


def _key(seed, fold=None):
    """A run's identity: (seed, fold); fold None without cross-validation (NaN in a CSV)."""
    return int(seed), None if fold is None or pd.isna(fold) else int(fold)


def _keys_of(frame):
    folds = frame["fold"] if "fold" in frame else [None] * len(frame)
    return [_key(seed, fold) for seed, fold in zip(frame["seed"], folds)]


def _replace(old, new, keys):
    """`old` rows without the runs in `keys`, then `new`, sorted by run (stable)."""
    kept = None if old is None else old[[k not in keys for k in _keys_of(old)]]
    frames = [f for f in (kept, new) if f is not None and not f.empty]
    if not frames:  # nothing left: the old columns, if any, and no rows
        return new if kept is None else kept
    joined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return joined.sort_values(run_keys(joined), kind="stable").reset_index(drop=True)


def store(root, finished, specs=(), keep_finished=False):
    """Store finished runs [(row, history rows)]: one write of each file per experiment, under its
    folder's lock, replacing the stored rows of the same runs (seed, or seed and fold); `specs` also
    write their spec.json. Returns the stored rows in order.

    `keep_finished`: a run of the same spec another process stored meanwhile (ok or diverged) is kept,
    and its stored row returned instead, so no run is stored twice."""
    specs = {spec.name: spec for spec in specs}
    by_name, out = {}, [None] * len(finished)
    for i, (row, history) in enumerate(finished):
        by_name.setdefault(row["experiment"], []).append((i, row, history))
    for name, items in by_name.items():
        folder = experiment_dir(root, name)
        with locked(folder):
            stored = read_csv(folder / "runs.csv")
            if keep_finished and stored is not None:
                theirs, fresh = _finished(stored), []
                for i, row, history in items:
                    mine = theirs.get((str(row["spec_hash"]), _key(row["seed"], row.get("fold"))))
                    if mine is None:
                        fresh.append((i, row, history))
                    else:
                        out[i] = mine
                items = fresh
            if not items:
                continue
            if name in specs:
                atomic_write(folder / "spec.json", specs[name].to_json() + "\n")
            keys = {_key(row["seed"], row.get("fold")) for _, row, _ in items}
            # history first: runs.csv marks a run done, so a kill between the two writes only means a re-run
            history = pd.DataFrame([h for _, _, rows in items for h in rows])
            hist = _replace(read_csv(folder / "history.csv"), history, keys)
            if len(hist.columns):  # nothing to write for a first run that failed before any epoch
                write_frame(
                    folder / "history.csv", hist.sort_values([*run_keys(hist), "epoch"], kind="stable")
                )
            runs = _replace(stored, pd.DataFrame([row for _, row, _ in items]), keys)
            columns = [*RUN_COLUMNS[:2], "fold", *RUN_COLUMNS[2:]] if "fold" in runs else RUN_COLUMNS
            write_frame(
                folder / "runs.csv", runs.reindex(columns=columns + [c for c in runs if c not in columns])
            )
            for i, row, _ in items:
                out[i] = row
    return out


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
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise damaged(path, f"not JSON: {exc}") from None


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def failed_row(spec, seed, fold, error, **extra):
    """The runs.csv row of a run that raised (`error`: the exception, or its text): status 'failed' and
    the error's first line, as 'Type: message'."""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return {
        "experiment": spec.name,
        "seed": seed,
        **({} if fold is None else {"fold": fold}),
        "spec_hash": spec.hash,
        "status": "failed",
        "error": text.splitlines()[0][:500] if text else "",
        **extra,
        "finished_at": now(),
    }


def _finished(runs):
    """{(spec hash, (seed, fold)): row} of the finished runs (ok or diverged) among runs.csv rows."""
    done = runs[runs["status"].isin(["ok", "diverged"])]
    return {(str(h), k): r for h, k, r in zip(done["spec_hash"], _keys_of(done), done.to_dict("records"))}


def finished_runs(root, name, spec_hash):
    """{(seed, fold): stored row} of the runs already stored for this exact spec, ok or diverged (a
    seeded run diverges again); fold is None without cross-validation. Failed runs are tried again."""
    return {k: row for (h, k), row in _finished(stored_runs(root, name)).items() if h == spec_hash}


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
