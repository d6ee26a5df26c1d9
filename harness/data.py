"""Data sets and their splits: train / validation / test, scaled on the training part only.

The test part is split off first (as the article does) and only evaluated at the end; a
validation part is carved, stratified, from the training part and drives curves and early
stopping. With `cv` ({"folds": K, "repeats": R}) the test part is instead one fold of a
repeated stratified k-fold, so each sample is tested exactly once per repeat. scikit-learn
is imported only when data is actually loaded.
"""

import functools
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

# scikit-learn's offline data sets: loader name and number of classes (known without loading).
BUILTIN = {
    "iris": ("load_iris", 3),
    "wine": ("load_wine", 3),
    "breast_cancer": ("load_breast_cancer", 2),
    "digits": ("load_digits", 10),
}
NAMES = (*BUILTIN, "csv")
SAMPLES = {"iris": 150, "wine": 178, "breast_cancer": 569, "digits": 1797}
SPLITS_KEPT = 64  # splits a process keeps loaded (a command loads each once)


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray  # None without a validation split
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self):
        return self.x_train.shape[1]


def n_classes(data):
    """Number of classes of a data spec; reads the target column of a CSV file."""
    if data["dataset"] in BUILTIN:
        return BUILTIN[data["dataset"]][1]
    return len(_read_csv(data["path"], data["target"])[2])


def _signature(path):
    """What identifies a file's version for the caches below: a changed file is read again."""
    from harness.errors import HarnessError

    try:
        st = os.stat(path)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the data file: {exc.strerror}") from None
    return os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns


def file_hash(path):
    """SHA-256 of a data file's bytes (part of a spec's hash: what a run trained on)."""
    return _file_hash(*_signature(path))


@functools.lru_cache(maxsize=32)
def _file_hash(path, *version):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rows(mask, limit=5):
    """'rows 3, 8 (of 12)': the first rows where `mask` holds, counted from 1 after the header."""
    rows = [int(i) + 1 for i in mask.to_numpy().nonzero()[0]]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:limit]))}{more}"


def _read_csv(path, target):
    return _read_csv_version(path, target, _signature(path))


@functools.lru_cache(maxsize=8)
def _read_csv_version(path, target, version):
    """Features (float64), class indices and class names of a CSV data set, checked: every
    problem that would make training meaningless is a HarnessError saying what to fix."""
    import pandas as pd

    from harness.errors import HarnessError

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # ParserError, EmptyDataError are ValueErrors
        raise HarnessError(f"{path}: cannot read as CSV: {str(exc).splitlines()[0]}") from None
    if target not in frame.columns:
        raise HarnessError(
            f"{path}: no target column {target!r}; columns: {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise HarnessError(f"{path}: a header and no data rows; add the rows to train on")
    features = frame.drop(columns=[target])
    if not len(features.columns):
        raise HarnessError(
            f"{path}: no feature columns, only the target {target!r}; add the columns to learn from"
        )
    problems = []
    for column in features.columns:
        values = features[column]
        numbers = pd.to_numeric(values, errors="coerce")
        text = numbers.isna() & values.notna()
        if text.any():
            examples = ", ".join(repr(v) for v in values[text].unique()[:3])
            problems.append(f"column {column!r} is not numeric at {_rows(text)} ({examples})")
            continue
        if values.isna().any():
            problems.append(f"column {column!r} has empty or NaN cells at {_rows(values.isna())}")
        infinite = np.isinf(numbers.to_numpy(dtype=np.float64))
        if infinite.any():
            problems.append(f"column {column!r} has infinite values at {_rows(pd.Series(infinite))}")
    if problems:
        not_numeric = [p.split("'")[1] for p in problems if "not numeric" in p]
        lead = (
            f"feature columns must be numeric; not numeric: {', '.join(not_numeric)}; " if not_numeric else ""
        )
        raise HarnessError(
            f"{path}: {lead}{'; '.join(problems)}. Every feature cell must be a finite number: "
            "fix or remove those rows (or drop the column)"
        )
    if frame[target].isna().any():
        raise HarnessError(
            f"{path}: the target column {target!r} is empty at {_rows(frame[target].isna())}; "
            "give every row a class or remove those rows"
        )
    classes, y = np.unique(frame[target].to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise HarnessError(
            f"{path}: the target column {target!r} has a single class ({str(classes[0])!r}) in all "
            f"{len(frame)} rows; a classifier needs at least two"
        )
    return features.to_numpy(dtype=np.float64), y.astype(np.int64), tuple(classes)


@functools.lru_cache(maxsize=8)
def _load_arrays(dataset, path=None, target=None, version=None):
    if dataset == "csv":
        x, y, _ = _read_csv(path, target)
        return x, y
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, BUILTIN[dataset][0])()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def folds(data):
    """The folds a data spec is run on: 0..K*R-1 with `cv`, else [None] (one split per seed)."""
    cv = data.get("cv")
    return list(range(cv["folds"] * cv.get("repeats", 1))) if cv else [None]


@functools.lru_cache(maxsize=8)
def _fold_indices(dataset, path, target, n_folds, repeats, split_seed):
    """(train, test) index arrays of every fold of a repeated stratified k-fold, in sklearn's order."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    x, y = _load_arrays(dataset, path, target)
    splitter = RepeatedStratifiedKFold(n_splits=n_folds, n_repeats=repeats, random_state=split_seed)
    return tuple(splitter.split(x, y))


def fold_indices(data):
    """[(train indices, test indices)] per fold of a `cv` data spec (fold i is element i)."""
    cv = data["cv"]
    return _fold_indices(
        data["dataset"],
        data.get("path"),
        data.get("target"),
        cv["folds"],
        cv.get("repeats", 1),
        data["split_seed"],
    )


def split_sizes(data):
    """(training samples, test samples) a run of this data spec uses, averaged over folds;
    from the known dataset size (or the fractions alone when the CSV cannot be read)."""
    import math

    if data["dataset"] in SAMPLES:
        n = SAMPLES[data["dataset"]]
    else:
        try:
            n = len(_read_csv(data["path"], data["target"])[1])
        except Exception:  # a moved CSV file: the fractions give the ratio
            n = None
    exact = n is not None
    n = n if exact else 1e6
    cv = data.get("cv")
    test = n / cv["folds"] if cv else (math.ceil(data["test_size"] * n) if exact else data["test_size"] * n)
    rest = n - test
    if data.get("validation_size"):
        rest -= math.ceil(data["validation_size"] * rest) if exact else data["validation_size"] * rest
    if data.get("train_fraction", 1.0) < 1:
        rest = math.floor(data["train_fraction"] * rest) if exact else data["train_fraction"] * rest
    return rest, test


def overlap_ratio(data):
    """n_test / n_train for Nadeau and Bengio's correction when training sets overlap between
    runs (k-fold, resplit); 0 for a fixed split, whose runs differ only by seed."""
    if not (data.get("cv") or data.get("resplit")):
        return 0.0
    train, test = split_sizes(data)
    return test / train


def load_split(data, seed=0, fold=None):
    """The split for a data spec; `seed` matters only when `data['resplit']` draws a split per seed,
    `fold` (0..K*R-1) only with `data['cv']`, where it picks the held-out fold. Too few rows for the
    requested parts is a HarnessError."""
    if data.get("cv") and fold not in folds(data):
        raise ValueError(f"fold {fold!r}: a cv data spec has folds 0..{len(folds(data)) - 1}")
    text = json.dumps(data, sort_keys=True, default=dict)
    version = _signature(data["path"]) if data["dataset"] == "csv" else None  # a changed file is read again
    try:
        return _split(text, seed if data.get("resplit") else 0, fold, version)
    except ValueError as exc:  # scikit-learn: a part would be empty, or a class too small to stratify
        from harness.errors import HarnessError

        csv = data["dataset"] == "csv"
        x, y = _load_arrays(data["dataset"], data.get("path"), data.get("target"))
        smallest = int(np.bincount(y).min())
        raise HarnessError(
            f"{data['path'] if csv else data['dataset']}: {len(x)} rows in {n_classes(data)} classes (the "
            f"smallest has {smallest}) are too few to split with test_size={data['test_size']}, "
            f"validation_size={data['validation_size']}, train_fraction={data['train_fraction']} "
            f"({str(exc).splitlines()[0]}); add rows or change those fractions"
        ) from None


@functools.lru_cache(maxsize=SPLITS_KEPT)
def _split(data, seed, fold, version):
    """A split of the data spec `data` (JSON), loaded once per process: its arrays are read-only."""
    split = _load(json.loads(data), seed, fold)
    for array in (split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test):
        if array is not None:
            array.flags.writeable = False
    return split


def _load(data, seed, fold):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    version = _signature(data["path"]) if data["dataset"] == "csv" else None  # a changed file is read again
    x, y = _load_arrays(data["dataset"], data.get("path"), data.get("target"), version)
    classes = n_classes(data)
    if data.get("cv"):
        if fold not in folds(data):
            raise ValueError(f"fold {fold!r}: a cv data spec has folds 0..{len(folds(data)) - 1}")
        # The fold is the test part; validation and train_fraction are carved from the rest as usual.
        split_seed = data["split_seed"]
        train_index, test_index = fold_indices(data)[fold]
        x_train, x_test, y_train, y_test = x[train_index], x[test_index], y[train_index], y[test_index]
    elif data["resplit"]:
        # Repeated hold-out: a new stratified split for every seed, so intervals cover the data too.
        split_seed = data["split_seed"] + 1000 * seed
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=data["test_size"], random_state=split_seed, stratify=y
        )
    else:
        split_seed = data["split_seed"]
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=data["test_size"], random_state=split_seed
        )
    x_val = y_val = None
    if data["validation_size"]:
        x_train, x_val, y_train, y_val = train_test_split(
            x_train, y_train, test_size=data["validation_size"], random_state=split_seed, stratify=y_train
        )
    if data["train_fraction"] < 1:
        # Less training data, same validation and test parts: the "more data" remedy's baseline.
        x_train, _, y_train, _ = train_test_split(
            x_train, y_train, train_size=data["train_fraction"], random_state=split_seed, stratify=y_train
        )
    if data["scale"]:
        scaler = (StandardScaler if data["scale"] == "standard" else MinMaxScaler)().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
        x_val = None if x_val is None else scaler.transform(x_val)

    def labels(values):
        if values is None or data["labels"] == "integer":
            return values
        return np.eye(classes, dtype=np.float32)[values]

    def features(values):
        return None if values is None else values.astype(np.float32)

    return Split(
        features(x_train),
        labels(y_train),
        features(x_val),
        labels(y_val),
        features(x_test),
        labels(y_test),
        classes,
    )
