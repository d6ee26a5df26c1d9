"""Data sets and their splits: train / validation / test, scaled on the training part only.

The test part is split off first (as the article does) and only evaluated at the end; a
validation part is carved, stratified, from the training part and drives curves and early
stopping. scikit-learn is imported only when data is actually loaded.
"""

import functools
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


@functools.lru_cache(maxsize=8)
def _read_csv(path, target):
    import pandas as pd

    from harness.errors import HarnessError

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise HarnessError(f"{path}: cannot read as CSV: {str(exc).splitlines()[0]}") from None
    if target not in frame.columns:
        raise HarnessError(
            f"{path}: no target column {target!r}; columns: {', '.join(map(str, frame.columns))}"
        )
    features = frame.drop(columns=[target])
    bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        raise HarnessError(
            f"{path}: feature columns must be numeric; not numeric: {', '.join(map(str, bad))}"
        )
    classes, y = np.unique(frame[target].to_numpy(), return_inverse=True)
    return features.to_numpy(dtype=np.float64), y.astype(np.int64), tuple(classes)


@functools.lru_cache(maxsize=8)
def _load_arrays(dataset, path=None, target=None):
    if dataset == "csv":
        x, y, _ = _read_csv(path, target)
        return x, y
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, BUILTIN[dataset][0])()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def load(data, seed=0):
    """The split for a data spec; `seed` matters only when `data['resplit']` draws a split per seed."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    x, y = _load_arrays(data["dataset"], data.get("path"), data.get("target"))
    classes = n_classes(data)
    if data["resplit"]:
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
