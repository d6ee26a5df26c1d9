"""harness.runner and harness.executor: few-epoch runs end to end, into a temporary results dir.

Runs go in this process (`jobs=1`) except in the one test that compares worker processes
with it. Each run is iris, 2-3 epochs: about a second.
"""

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from harness import (
    executor,
    results,
    runner,  # noqa: F401  (first: brings Keras up the harness's way, quiet and single-threaded)
)
from harness.spec import from_dict

METRICS = ["epochs_run", "best_epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "params"]


class Recorder:
    """A stand-in for harness.progress.Progress that remembers what it was told."""

    def __init__(self):
        self.started, self.rows, self.epochs, self.finished = None, [], [], False

    def start(self, total, skipped=0):
        self.started = (total, skipped)

    def begin(self, spec, seed, fold=None):
        pass

    def running(self, workers):
        pass

    def epoch(self, epoch):
        self.epochs.append(epoch)

    def done(self, row):
        self.rows.append(row)

    def finish(self):
        self.finished = True


def make_spec(tiny_spec, **changes):
    raw = {**tiny_spec, "fit": {"epochs": 3, "batch_size": 16}, "seeds": [0, 1]}
    for section, values in changes.items():
        raw[section] = {**raw[section], **values} if isinstance(values, dict) else values
    return from_dict(raw)


def read(root, name, what):
    return pd.read_csv(root / name / f"{what}.csv")


def temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """tiny: 3 epochs, seeds 0 and 1, run once into a results dir shared by this module's tests."""
    import copy

    from conftest import TINY

    spec = make_spec(copy.deepcopy(TINY))
    root = tmp_path_factory.mktemp("results")
    progress = Recorder()
    failures = executor.run([spec], root, jobs=1, progress=progress)
    return spec, root, failures, progress


def test_run_writes_runs_history_and_spec(sweep):
    spec, root, failures, progress = sweep
    assert failures == []
    folder = root / spec.name
    assert {p.name for p in folder.iterdir()} >= {"runs.csv", "history.csv", "spec.json"}
    assert temp_files(folder) == []
    runs = read(root, spec.name, "runs")
    assert list(runs.columns) == results.RUN_COLUMNS
    assert sorted(runs["seed"]) == [0, 1]  # one row per seed
    assert (runs["status"] == "ok").all() and (runs["spec_hash"] == spec.hash).all()
    assert (runs["epochs_run"] == 3).all()
    assert (
        runs[["train_loss", "train_accuracy", "test_loss", "test_accuracy", "fit_seconds"]]
        .notna()
        .all()
        .all()
    )
    assert runs[["val_loss", "val_accuracy"]].isna().all().all()  # no validation split
    assert ((runs["test_accuracy"] >= 0) & (runs["test_accuracy"] <= 1)).all()
    assert (runs["params"] == 35).all() and (runs["backend"] == "tensorflow").all()
    history = read(root, spec.name, "history")
    assert list(history.columns[:4]) == results.HISTORY_KEYS
    assert {"loss", "accuracy"} <= set(history.columns)
    assert len(history) == len(spec.seeds) * spec.fit["epochs"]
    assert list(zip(history["seed"], history["epoch"])) == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    assert results.stored_spec(root, spec.name) == spec.to_dict()
    assert progress.started == (2, 0) and len(progress.rows) == 2 and progress.finished
    assert progress.epochs == [1, 2, 3, 1, 2, 3]


def test_best_epoch_without_validation_is_the_lowest_training_loss(sweep):
    spec, root, _, _ = sweep
    runs, history = read(root, spec.name, "runs"), read(root, spec.name, "history")
    for seed in spec.seeds:
        losses = history.loc[history["seed"] == seed].sort_values("epoch")["loss"].to_numpy()
        assert runs.loc[runs["seed"] == seed, "best_epoch"].item() == int(np.argmin(losses)) + 1


def test_stored_seeds_are_skipped_without_force(sweep, tmp_path):
    spec, root, _, _ = sweep
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    before = (tmp_path / spec.name / "runs.csv").read_bytes()
    progress = Recorder()
    assert executor.run([spec], tmp_path, jobs=1, progress=progress) == []
    assert progress.started == (0, 2) and progress.rows == []
    assert (tmp_path / spec.name / "runs.csv").read_bytes() == before


def test_only_new_seeds_run_without_force(sweep, tmp_path):
    spec, root, _, _ = sweep
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    progress = Recorder()
    executor.run([spec.with_seeds([0, 1, 2])], tmp_path, jobs=1, progress=progress)
    assert progress.started == (1, 2) and [r["seed"] for r in progress.rows] == [2]
    assert read(tmp_path, spec.name, "runs")["seed"].tolist() == [0, 1, 2]
    assert len(read(tmp_path, spec.name, "history")) == 3 * 3


def test_force_replaces_rows_and_the_same_seed_gives_the_same_metrics(sweep, tmp_path):
    spec, root, _, _ = sweep
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    first_runs, first_history = read(root, spec.name, "runs"), read(root, spec.name, "history")
    progress = Recorder()
    assert executor.run([spec], tmp_path, jobs=1, force=True, progress=progress) == []
    assert progress.started == (2, 0)
    runs, history = read(tmp_path, spec.name, "runs"), read(tmp_path, spec.name, "history")
    assert runs["seed"].tolist() == [0, 1]  # replaced, not duplicated
    assert len(history) == 2 * 3
    pd.testing.assert_frame_equal(runs[METRICS], first_runs[METRICS])
    pd.testing.assert_frame_equal(history, first_history)
    assert temp_files(tmp_path / spec.name) == []


def test_a_changed_spec_reruns_its_seeds_and_replaces_their_rows(sweep, tmp_path, tiny_spec):
    spec, root, _, _ = sweep
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    shorter = make_spec(tiny_spec, fit={"epochs": 2})
    assert shorter.name == spec.name and shorter.hash != spec.hash
    progress = Recorder()
    executor.run([shorter], tmp_path, jobs=1, progress=progress)
    assert progress.started == (2, 0)
    runs, history = read(tmp_path, spec.name, "runs"), read(tmp_path, spec.name, "history")
    assert runs["seed"].tolist() == [0, 1] and (runs["spec_hash"] == shorter.hash).all()
    assert len(history) == 2 * 2 and (history["spec_hash"] == shorter.hash).all()
    assert results.stored_spec(tmp_path, spec.name)["fit"]["epochs"] == 2


def test_different_seeds_give_different_runs(sweep):
    spec, root, _, _ = sweep
    runs = read(root, spec.name, "runs")
    assert runs.loc[0, "train_loss"] != runs.loc[1, "train_loss"]


def test_validation_split_fills_val_columns_and_best_epoch(tiny_spec, tmp_path):
    spec = make_spec(tiny_spec, data={"validation_size": 0.25}, fit={"epochs": 4}, seeds=[0])
    assert executor.run([spec], tmp_path, jobs=1) == []
    runs, history = read(tmp_path, spec.name, "runs"), read(tmp_path, spec.name, "history")
    assert runs[["val_loss", "val_accuracy"]].notna().all().all()
    assert {"val_loss", "val_accuracy"} <= set(history.columns)
    assert history[["val_loss", "val_accuracy"]].notna().all().all()
    assert len(history) == 4
    val_loss = history.sort_values("epoch")["val_loss"].to_numpy()
    assert runs.loc[0, "best_epoch"] == int(np.argmin(val_loss)) + 1
    # the stored val_loss is that of the final model, i.e. of the last epoch
    assert runs.loc[0, "val_loss"] == pytest.approx(val_loss[-1], rel=1e-4, abs=1e-5)


def test_early_stopping_stops_and_history_follows(tiny_spec, tmp_path):
    stop = {"class_name": "EarlyStopping", "monitor": "val_loss", "patience": 0, "min_delta": 10.0}
    spec = make_spec(
        tiny_spec, data={"validation_size": 0.25}, fit={"epochs": 5, "callbacks": [stop]}, seeds=[0]
    )
    executor.run([spec], tmp_path, jobs=1)
    runs, history = read(tmp_path, spec.name, "runs"), read(tmp_path, spec.name, "history")
    # no epoch improves val_loss by 10, so Keras stops after the second epoch (patience 0)
    assert runs.loc[0, "epochs_run"] == 2 and len(history) == 2


def test_run_seed_is_reproducible(tiny_spec):
    spec = make_spec(tiny_spec, fit={"epochs": 2}, seeds=[7])
    (row_a, hist_a), (row_b, hist_b) = runner.run_seed(spec, 7), runner.run_seed(spec, 7)
    assert {k: row_a[k] for k in METRICS} == {k: row_b[k] for k in METRICS}
    assert hist_a == hist_b
    assert set(row_a) >= set(results.RUN_COLUMNS) - {"val_loss", "val_accuracy"}


def test_a_run_that_raises_is_recorded_as_failed_and_the_rest_go_on(tiny_spec, tmp_path, monkeypatch):
    spec = make_spec(tiny_spec, fit={"epochs": 2})
    real = runner.run_seed

    def flaky(spec, seed, **kwargs):
        if seed == 0:
            raise RuntimeError("out of luck\nsecond line")
        return real(spec, seed, **kwargs)

    monkeypatch.setattr(runner, "run_seed", flaky)
    failures = executor.run([spec], tmp_path, jobs=1)
    assert [(f["seed"], f["status"], f["error"]) for f in failures] == [
        (0, "failed", "RuntimeError: out of luck")
    ]
    runs = read(tmp_path, spec.name, "runs")
    assert runs["status"].tolist() == ["failed", "ok"]
    assert read(tmp_path, spec.name, "history")["seed"].unique().tolist() == [1]
    assert results.finished_seeds(tmp_path, spec.name, spec.hash) == {1}  # seed 0 is retried next time


def test_best_epoch():
    assert runner.best_epoch({"loss": [3.0, 1.0, 2.0]}) == 2
    assert runner.best_epoch({"loss": [3.0, 1.0, 2.0], "val_loss": [1.0, 2.0, 0.5]}) == 3
    assert runner.best_epoch({"loss": [float("nan"), 2.0, 1.0]}) == 3
    assert runner.best_epoch({}) is None
    assert runner.best_epoch({"loss": [float("nan")]}) is None


def test_plan(sweep, tiny_spec):
    spec, root, _, _ = sweep
    todo, skipped = executor.plan([spec.with_seeds([0, 1, 2])], root)
    assert [(seed, fold) for _, seed, fold in todo] == [(2, None)] and skipped == 2
    todo, skipped = executor.plan([spec], root, force=True)
    assert [(seed, fold) for _, seed, fold in todo] == [(0, None), (1, None)] and skipped == 0


def test_check_specs_refuses_before_anything_trains(tiny_spec, tmp_path):
    from harness.errors import SpecError

    tiny_spec["model"][0]["class_name"] = "Dens"
    spec = from_dict(tiny_spec)
    with pytest.raises(SpecError, match="Did you mean 'Dense'"):
        executor.run([spec], tmp_path, jobs=1)
    assert not (tmp_path / spec.name / "runs.csv").exists()


def test_worker_processes_give_the_same_numbers_as_one_process(sweep, tmp_path):
    """Two spawned workers (each imports Keras: ~10-20 s) against the in-process sweep."""
    spec, root, _, _ = sweep
    assert executor.run([spec], tmp_path, jobs=2) == []
    runs = read(tmp_path, spec.name, "runs")
    pd.testing.assert_frame_equal(runs[METRICS], read(root, spec.name, "runs")[METRICS])
    assert os.getpid() not in set(runs["pid"])  # trained in the workers
    pd.testing.assert_frame_equal(read(tmp_path, spec.name, "history"), read(root, spec.name, "history"))


@pytest.mark.slow
def test_iris_baseline_reaches_the_articles_accuracy(tmp_path):
    """The full article experiment: 100 epochs, 5 seeds, all cores (a minute or two)."""
    from harness import registry

    spec = registry.discover()["iris_baseline"]
    assert executor.run([spec], tmp_path) == []
    runs = read(tmp_path, spec.name, "runs")
    assert runs["seed"].tolist() == [0, 1, 2, 3, 4] and (runs["status"] == "ok").all()
    assert (runs["epochs_run"] == 100).all()
    assert len(read(tmp_path, spec.name, "history")) == 5 * 100
    assert runs["test_accuracy"].mean() >= 0.9, runs["test_accuracy"].tolist()


def test_losses_in_runs_csv_leave_out_the_weight_penalty(tiny_spec):
    raw = dict(
        tiny_spec,
        compile={
            "optimizer": "adam",
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy", "sparse_categorical_crossentropy"],
        },
    )
    raw["model"] = [
        dict(raw["model"][0], kernel_regularizer={"class_name": "L2", "l2": 0.1}),
        raw["model"][1],
    ]
    row, _ = runner.run_seed(from_dict(raw), 0)
    assert row["loss_penalty"] > 0.01
    for part in ("train", "test"):
        assert row[f"{part}_loss"] == pytest.approx(row[f"{part}_sparse_categorical_crossentropy"], abs=1e-5)
    plain, _ = runner.run_seed(from_dict(tiny_spec), 0)
    assert plain["loss_penalty"] == 0.0


def test_a_spec_without_cv_gives_the_numbers_of_before(tiny_spec):
    """Measured on TensorFlow before data.cv existed: same hash, same numbers, no fold key."""
    from harness.training.backend import keras

    spec = from_dict(tiny_spec)
    row, history = runner.run_seed(spec, 1)
    assert spec.hash == "f31214811ee5" and "fold" not in row and "fold" not in history[0]
    if keras.backend.backend() == "tensorflow":
        assert row["train_loss"] == pytest.approx(1.4994670152664185, rel=1e-6)
        assert row["test_loss"] == pytest.approx(1.5145108699798584, rel=1e-6)
        assert row["test_accuracy"] == pytest.approx(0.1, abs=1e-6)


def test_cv_runs_every_seed_on_every_fold_and_resumes_by_seed_and_fold(tiny_spec, tmp_path):
    spec = make_spec(tiny_spec, data={"cv": {"folds": 3}}, fit={"epochs": 1}, seeds=[0])
    todo, skipped = executor.plan([spec.with_seeds([0, 1])], tmp_path)
    assert [(seed, fold) for _, seed, fold in todo] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    recorder = Recorder()
    assert executor.run([spec], tmp_path, jobs=1, progress=recorder) == []
    runs, history = read(tmp_path, spec.name, "runs"), read(tmp_path, spec.name, "history")
    assert list(zip(runs["seed"], runs["fold"])) == [(0, 0), (0, 1), (0, 2)]
    assert (runs["status"] == "ok").all() and len(set(runs["test_loss"])) == 3  # three test parts
    assert list(zip(history["seed"], history["fold"])) == [(0, 0), (0, 1), (0, 2)]  # one epoch each
    assert [row["fold"] for row in recorder.rows] == [0, 1, 2]
    todo, skipped = executor.plan([spec.with_seeds([0, 1])], tmp_path)
    assert [(seed, fold) for _, seed, fold in todo] == [(1, 0), (1, 1), (1, 2)] and skipped == 3
    row, _ = runner.run_seed(spec, 0, fold=2)
    assert row["fold"] == 2 and row["test_loss"] == pytest.approx(runs["test_loss"].iloc[2], rel=1e-5)


def test_work_checks_and_runs_a_payload_as_both_executors_do(tiny_spec):
    tiny_spec = from_dict(tiny_spec)
    bad = tiny_spec.with_overrides({"model.0.class_name": "Dense2"})
    assert runner.work("check", [tiny_spec]) is None
    assert "Dense2" in runner.work("check", [bad])  # the error as text: SpecError does not pickle
    row, history = runner.work("run", (tiny_spec, 0, None, True))
    assert row["status"] == "ok" and len(history) == tiny_spec.fit["epochs"] and row["deterministic"]
    row, history = runner.work("run", (bad, 0, None, True))
    assert row["status"] == "failed" and "Dense2" in row["error"] and history == []
