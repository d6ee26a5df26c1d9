"""harness.data: the article's iris split, validation and test parts, labels, CSV data sets."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from harness import data
from harness.errors import HarnessError
from harness.spec import DEFAULTS, from_dict


def data_spec(**changes):
    return {**DEFAULTS["data"], **changes}


def article_split():
    """The article's preprocessing, verbatim."""
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=42
    )
    scaler = StandardScaler()
    x_train = scaler.fit_transform(x_train)
    x_test = scaler.transform(x_test)
    return x_train, x_test, y_train, y_test


def test_iris_split_is_exactly_the_articles():
    x_train, x_test, y_train, y_test = article_split()
    split = data.load_split(data_spec())
    np.testing.assert_array_equal(split.x_train, x_train.astype(np.float32))
    np.testing.assert_array_equal(split.x_test, x_test.astype(np.float32))
    np.testing.assert_array_equal(split.y_train, y_train)
    np.testing.assert_array_equal(split.y_test, y_test)
    assert split.x_val is None and split.y_val is None
    assert split.x_train.shape == (120, 4) and split.x_test.shape == (30, 4)
    assert split.n_features == 4 and split.n_classes == 3
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64


def test_the_project_baseline_uses_the_articles_split():
    from harness import registry

    spec = registry.discover()["iris_baseline"]
    x_train, x_test, y_train, y_test = article_split()
    for seed in spec.seeds[:2]:  # without resplit, the seed does not change the split
        split = data.load_split(spec.data, seed)
        np.testing.assert_array_equal(split.x_train, x_train.astype(np.float32))
        np.testing.assert_array_equal(split.y_test, y_test)


def test_scaler_is_fitted_on_the_training_part_only():
    split = data.load_split(data_spec())
    np.testing.assert_allclose(split.x_train.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(split.x_train.std(axis=0), 1, atol=1e-5)
    assert np.abs(split.x_test.mean(axis=0)).max() > 1e-3  # the test part is not re-centred


def test_minmax_and_no_scaling():
    iris = load_iris()
    x_train, x_test, _, _ = train_test_split(iris.data, iris.target, test_size=0.2, random_state=42)
    minmax = data.load_split(data_spec(scale="minmax"))
    scaler = MinMaxScaler().fit(x_train)
    np.testing.assert_array_equal(minmax.x_test, scaler.transform(x_test).astype(np.float32))
    raw = data.load_split(data_spec(scale=None))
    np.testing.assert_array_equal(raw.x_train, x_train.astype(np.float32))


def test_validation_split_is_stratified_and_carved_from_the_training_part():
    plain = data.load_split(data_spec())
    split = data.load_split(data_spec(validation_size=0.25))
    assert len(split.x_train) == 90 and len(split.x_val) == 30
    # the test part does not move
    np.testing.assert_array_equal(split.y_test, plain.y_test)
    # training and validation together are exactly the article's training part (as rows)
    iris = load_iris()
    x_tr, x_te, y_tr, y_te = train_test_split(iris.data, iris.target, test_size=0.2, random_state=42)
    x_fit, x_val, y_fit, y_val = train_test_split(x_tr, y_tr, test_size=0.25, random_state=42, stratify=y_tr)
    scaler = StandardScaler().fit(x_fit)  # scaled on what is trained on
    np.testing.assert_array_equal(split.x_train, scaler.transform(x_fit).astype(np.float32))
    np.testing.assert_array_equal(split.x_val, scaler.transform(x_val).astype(np.float32))
    np.testing.assert_array_equal(split.x_test, scaler.transform(x_te).astype(np.float32))
    np.testing.assert_array_equal(split.y_train, y_fit)
    np.testing.assert_array_equal(split.y_val, y_val)
    rows = lambda x: sorted(map(tuple, x))  # noqa: E731
    assert rows(np.concatenate([x_fit, x_val])) == rows(x_tr)
    # stratified: class shares of validation match those of the training part
    train_share = np.bincount(y_tr, minlength=3) / len(y_tr)
    val_share = np.bincount(split.y_val, minlength=3) / len(split.y_val)
    np.testing.assert_allclose(val_share, train_share, atol=1 / len(split.y_val) + 1e-9)


@pytest.mark.parametrize("validation_size", [0.1, 0.2, 0.5])
def test_test_part_is_unchanged_by_validation_size(validation_size):
    x_train, x_test, y_train, y_test = article_split()
    split = data.load_split(data_spec(validation_size=validation_size))
    np.testing.assert_array_equal(split.y_test, y_test)
    assert len(split.x_test) == 30
    assert len(split.x_train) + len(split.x_val) == 120


def test_train_fraction_keeps_validation_and_test_parts():
    full = data.load_split(data_spec(validation_size=0.25))
    half = data.load_split(data_spec(validation_size=0.25, train_fraction=0.5))
    assert len(half.x_train) == 45
    np.testing.assert_array_equal(half.y_val, full.y_val)
    np.testing.assert_array_equal(half.y_test, full.y_test)


def test_onehot_labels():
    integer = data.load_split(data_spec(validation_size=0.25))
    onehot = data.load_split(data_spec(validation_size=0.25, labels="onehot"))
    for ints, hot in (
        (integer.y_train, onehot.y_train),
        (integer.y_val, onehot.y_val),
        (integer.y_test, onehot.y_test),
    ):
        assert hot.shape == (len(ints), 3)
        assert set(np.unique(hot)) == {0.0, 1.0}
        np.testing.assert_array_equal(hot.sum(axis=1), 1)
        np.testing.assert_array_equal(hot.argmax(axis=1), ints)
    np.testing.assert_array_equal(onehot.x_train, integer.x_train)


def test_resplit_draws_a_split_per_seed():
    fixed = [data.load_split(data_spec(), seed) for seed in (0, 1)]
    np.testing.assert_array_equal(fixed[0].x_test, fixed[1].x_test)
    splits = [data.load_split(data_spec(resplit=True), seed) for seed in (0, 1, 2)]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not np.array_equal(splits[a].x_test, splits[b].x_test)
    again = data.load_split(data_spec(resplit=True), 1)
    np.testing.assert_array_equal(again.x_test, splits[1].x_test)  # same seed, same split
    for split in splits:  # stratified: 10 of each class in the test part
        np.testing.assert_array_equal(np.bincount(split.y_test), [10, 10, 10])


@pytest.mark.parametrize(
    "name, classes, features",
    [
        ("iris", 3, 4),
        ("wine", 3, 13),
        ("breast_cancer", 2, 30),
        ("digits", 10, 64),
    ],
)
def test_builtin_datasets(name, classes, features):
    assert data.n_classes({"dataset": name}) == classes
    split = data.load_split(data_spec(dataset=name))
    assert split.n_classes == classes and split.n_features == features
    assert set(np.unique(split.y_train)) == set(range(classes))


# -- CSV data sets ------------------------------------------------------------------------


@pytest.fixture
def flowers_csv(tmp_path):
    rng = np.random.default_rng(0)
    names = np.array(["setosa", "versicolor", "virginica"])
    labels = np.repeat(names, 20)
    centres = {"setosa": 0.0, "versicolor": 3.0, "virginica": 6.0}
    lines = ["length,width,species,height"]
    for label in labels:
        a, b, c = rng.normal(centres[label], 1.0, size=3)
        lines.append(f"{a:.4f},{b:.4f},{label},{c:.4f}")
    path = tmp_path / "flowers.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_dataset_with_string_labels(flowers_csv):
    import pandas as pd

    spec = data_spec(
        dataset="csv", path=str(flowers_csv), target="species", test_size=0.25, validation_size=0.2
    )
    assert data.n_classes(spec) == 3
    split = data.load_split(spec)
    assert split.n_classes == 3 and split.n_features == 3  # the target column is not a feature
    assert len(split.x_test) == 15 and len(split.x_train) + len(split.x_val) == 45
    frame = pd.read_csv(flowers_csv)
    codes = {"setosa": 0, "versicolor": 1, "virginica": 2}  # sorted class names
    y = frame["species"].map(codes).to_numpy()
    x = frame.drop(columns=["species"]).to_numpy()
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.25, random_state=42)
    np.testing.assert_array_equal(split.y_test, y_test)
    assert split.x_test.shape == x_test.shape


def test_csv_dataset_in_a_spec(flowers_csv, tiny_spec):
    tiny_spec["data"] = {"dataset": "csv", "path": str(flowers_csv), "target": "species"}
    spec = from_dict(tiny_spec)  # 3 output units match the 3 species
    assert data.load_split(spec.data).n_classes == 3
    tiny_spec["model"][-1]["units"] = 4
    with pytest.raises(HarnessError, match="csv has 3 classes"):
        from_dict(tiny_spec)


def test_csv_missing_target_column(flowers_csv):
    with pytest.raises(
        HarnessError, match="no target column 'kind'; columns: length, width, species, height"
    ):
        data.load_split(data_spec(dataset="csv", path=str(flowers_csv), target="kind"))


def test_csv_non_numeric_feature(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("colour,size,label\nred,1,a\nblue,2,b\nred,3,a\nblue,4,b\n")
    with pytest.raises(HarnessError, match="feature columns must be numeric; not numeric: colour"):
        data.load_split(data_spec(dataset="csv", path=str(path), target="label"))


@pytest.mark.parametrize("text", ["", "a,b,label\n1,2,x\n3,4,5,6,7\n"], ids=["empty", "ragged"])
def test_csv_that_does_not_parse_is_a_user_error_naming_the_file(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(HarnessError, match=f"{path}: "):
        data.n_classes(data_spec(dataset="csv", path=str(path), target="label"))


# -- data that cannot be trained on: exit 2 before training, saying what to fix -------------

GOOD_ROWS = "".join(f"{i / 10},{(i * 7) % 5},{'ab'[i % 2]}\n" for i in range(20))


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("a,b,y\n" + GOOD_ROWS + "nan,1,a\n", ["column 'a' has empty or NaN cells at row 21"]),
        ("a,b,y\n" + GOOD_ROWS + ",1,a\n", ["column 'a' has empty or NaN cells at row 21"]),
        ("a,b,y\n" + GOOD_ROWS + "inf,1,a\n-inf,2,b\n", ["column 'a' has infinite values at rows 21, 22"]),
        (
            "a,b,y\n1,x,a\n" + GOOD_ROWS + "2,oops,b\n",
            ["not numeric: b", "column 'b' is not numeric at rows 1, 22 ('x', 'oops')"],
        ),
        ("a,b,y\n", ["a header and no data rows"]),
        ("y\na\nb\na\nb\n", ["no feature columns, only the target 'y'"]),
        ("a,b,y\n" + GOOD_ROWS.replace(",b\n", ",a\n"), ["has a single class ('a') in all 20 rows"]),
        ("a,b,y\n" + GOOD_ROWS + "1,2,\n", ["the target column 'y' is empty at row 21"]),
    ],
    ids=["nan", "empty_cell", "infinite", "text", "header_only", "no_features", "one_class", "no_target"],
)
def test_data_that_cannot_be_trained_on_names_file_column_and_rows(tmp_path, text, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(HarnessError) as caught:
        data.load_split(data_spec(dataset="csv", path=str(path), target="y"))
    assert str(caught.value).startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_too_few_rows_for_the_splits(tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("a,y\n1,a\n2,b\n3,a\n")
    with pytest.raises(HarnessError) as caught:
        data.load_split(data_spec(dataset="csv", path=str(path), target="y", validation_size=0.5))
    message = str(caught.value)
    assert message.startswith(f"{path}: 3 rows in 2 classes (the smallest has 1) are too few to split")
    assert "test_size=0.2, validation_size=0.5" in message and "add rows or change those fractions" in message


def test_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20)))
    assert data.load_split(data_spec(dataset="csv", path=str(path), target="y")).x_train.max() <= 3
    path.write_text("a,y\n" + "".join(f"{i},{'ab'[i % 2]}\nnan,a\n" for i in range(20)))
    with pytest.raises(HarnessError, match="NaN cells"):
        data.load_split(data_spec(dataset="csv", path=str(path), target="y"))


def test_bad_data_in_a_spec_names_the_experiment(tiny_spec, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n" + GOOD_ROWS + "x,1,a\n")
    tiny_spec["data"] = {"dataset": "csv", "path": str(path), "target": "y"}
    with pytest.raises(HarnessError, match=r"experiment 'tiny': data\.path: .*bad\.csv: feature columns"):
        from_dict(tiny_spec)


# -- repeated stratified k-fold ----------------------------------------------------------


def _rows(x):
    """The rows of x in a canonical (lexicographic) order, to compare sets of samples."""
    x = np.asarray(x, dtype=np.float32)
    return x[np.lexsort(x.T[::-1])]


def test_cv_tests_each_sample_exactly_once_per_repeat():
    spec = data_spec(cv={"folds": 5, "repeats": 2}, scale=None)
    assert data.folds(spec) == list(range(10)) and data.folds(data_spec()) == [None]
    x, y = load_iris(return_X_y=True)
    splits = [data.load_split(spec, seed=0, fold=fold) for fold in range(10)]
    for repeat in range(2):
        tested = [splits[repeat * 5 + k] for k in range(5)]
        assert [len(s.x_test) for s in tested] == [30] * 5
        np.testing.assert_array_equal(_rows(np.concatenate([s.x_test for s in tested])), _rows(x))
        np.testing.assert_array_equal(np.bincount(np.concatenate([s.y_test for s in tested])), [50, 50, 50])
        for s in tested:  # stratified, and the rest is the training part
            np.testing.assert_array_equal(np.bincount(s.y_test), [10, 10, 10])
            both = np.concatenate([s.x_train, s.x_test])
            np.testing.assert_array_equal(_rows(both), _rows(x))
    # the second repeat draws other folds; the seed does not change them
    assert not np.array_equal(_rows(splits[0].x_test), _rows(splits[5].x_test))
    np.testing.assert_array_equal(data.load_split(spec, seed=3, fold=2).x_test, splits[2].x_test)
    with pytest.raises(ValueError, match="folds 0..9"):
        data.load_split(spec, seed=0, fold=10)


def test_cv_scales_with_the_training_part_only_and_carves_validation_from_the_rest():
    raw = data.load_split(data_spec(cv={"folds": 5}, scale=None, validation_size=0.25), fold=3)
    scaled = data.load_split(data_spec(cv={"folds": 5}, validation_size=0.25), fold=3)
    assert (len(raw.x_train), len(raw.x_val), len(raw.x_test)) == (90, 30, 30)
    x, _ = load_iris(return_X_y=True)
    np.testing.assert_array_equal(_rows(np.concatenate([raw.x_train, raw.x_val, raw.x_test])), _rows(x))
    mean, std = raw.x_train.astype(np.float64).mean(axis=0), raw.x_train.astype(np.float64).std(axis=0)
    for part in ("x_train", "x_val", "x_test"):
        expected = (getattr(raw, part).astype(np.float64) - mean) / std
        np.testing.assert_allclose(getattr(scaled, part), expected, atol=1e-5)
    np.testing.assert_allclose(scaled.x_train.mean(axis=0), 0, atol=1e-6)
    assert np.abs(scaled.x_test.mean(axis=0)).max() > 1e-3  # the held-out fold is not re-centred
    fewer = data.load_split(data_spec(cv={"folds": 5}, scale=None, train_fraction=0.5), fold=3)
    assert (len(fewer.x_train), len(fewer.x_test)) == (60, 30)  # same held-out fold, half the rest
    np.testing.assert_array_equal(
        fewer.x_test, data.load_split(data_spec(cv={"folds": 5}, scale=None), fold=3).x_test
    )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"validation_size": 0.2},
        {"validation_size": 0.25, "train_fraction": 0.5},
        {"resplit": True, "test_size": 0.3},
        {"cv": {"folds": 5}},
        {"cv": {"folds": 4, "repeats": 2}, "validation_size": 0.2},
        {"dataset": "wine", "test_size": 0.33, "train_fraction": 0.7},
    ],
)
def test_split_sizes_are_those_of_the_loaded_split(changes):
    spec = data_spec(**changes)
    loaded = [data.load_split(spec, seed=0, fold=fold) for fold in data.folds(spec)]
    train, test = data.split_sizes(spec)
    assert train == pytest.approx(np.mean([len(s.x_train) for s in loaded]), abs=0.5)
    assert test == pytest.approx(np.mean([len(s.x_test) for s in loaded]))


def test_overlap_ratio_is_zero_for_a_fixed_split():
    assert data.overlap_ratio(data_spec()) == 0.0
    assert data.overlap_ratio(data_spec(resplit=True)) == pytest.approx(30 / 120)
    assert data.overlap_ratio(data_spec(cv={"folds": 10})) == pytest.approx(15 / 135)
