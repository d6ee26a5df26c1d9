"""harness.results: atomic writes, one row per seed, stored runs and summaries."""

import json
import os
import signal
import subprocess

import numpy as np
import pandas as pd
import pytest

from harness import results
from harness.spec import from_dict


def store(root, row, history):
    """One run through the one store function."""
    return results.store(root, [(row, history)])[0]


def run_row(seed, experiment="tiny", spec_hash="abc123", status="ok", test_accuracy=0.9, **extra):
    return {
        "experiment": experiment,
        "seed": seed,
        "spec_hash": spec_hash,
        "status": status,
        "error": "",
        "epochs_run": 2,
        "best_epoch": 2,
        "train_loss": 0.5,
        "train_accuracy": 0.8,
        "test_loss": 0.4,
        "test_accuracy": test_accuracy,
        "fit_seconds": 0.1,
        **extra,
    }


def history_rows(seed, epochs=2, experiment="tiny", spec_hash="abc123", loss=1.0):
    return [
        {
            "experiment": experiment,
            "seed": seed,
            "spec_hash": spec_hash,
            "epoch": e + 1,
            "loss": loss / (e + 1),
            "accuracy": 0.5,
        }
        for e in range(epochs)
    ]


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_atomic_write_writes_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "er" / "file.txt"
    results.atomic_write(path, "one\n")
    assert path.read_text() == "one\n"
    results.atomic_write(path, "two\n")
    assert path.read_text() == "two\n"
    assert leftovers(path.parent) == []


def test_atomic_write_that_fails_keeps_the_old_file_and_no_temp_files(tmp_path):
    path = tmp_path / "file.txt"
    results.atomic_write(path, "old\n")
    with pytest.raises(TypeError):
        results.atomic_write(path, b"not text")  # fails while writing
    assert path.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_store_writes_runs_and_history_with_the_documented_columns(tmp_path):
    store(tmp_path, run_row(0), history_rows(0))
    runs = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    assert list(runs.columns[: len(results.RUN_COLUMNS)]) == results.RUN_COLUMNS
    assert len(runs) == 1 and runs.loc[0, "test_accuracy"] == 0.9
    history = pd.read_csv(tmp_path / "tiny" / "history.csv")
    assert list(history.columns[:4]) == results.HISTORY_KEYS
    assert len(history) == 2
    assert leftovers(tmp_path / "tiny") == []


def test_store_replaces_the_rows_of_its_seed(tmp_path):
    store(tmp_path, run_row(1, test_accuracy=0.5), history_rows(1, epochs=3))
    store(tmp_path, run_row(0, test_accuracy=0.6), history_rows(0, epochs=2))
    store(tmp_path, run_row(1, test_accuracy=0.7), history_rows(1, epochs=2, loss=9.0))
    runs = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    assert runs["seed"].tolist() == [0, 1]  # sorted by seed, one row each
    assert runs["test_accuracy"].tolist() == [0.6, 0.7]
    history = pd.read_csv(tmp_path / "tiny" / "history.csv")
    assert list(zip(history["seed"], history["epoch"])) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert history.loc[history["seed"] == 1, "loss"].tolist() == [9.0, 4.5]
    assert leftovers(tmp_path / "tiny") == []


def test_extra_columns_come_after_the_documented_ones(tmp_path):
    store(tmp_path, run_row(0, custom_metric=1.5), history_rows(0))
    runs = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    assert list(runs.columns) == results.RUN_COLUMNS + ["custom_metric"]


def test_a_failed_run_without_history_is_stored(tmp_path, tiny_spec):
    spec = from_dict(tiny_spec)
    store(tmp_path, results.failed_row(spec, 0, None, "ValueError: boom\nmore lines"), [])
    runs = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    assert runs.loc[0, "status"] == "failed" and runs.loc[0, "error"] == "ValueError: boom"
    assert results.finished_runs(tmp_path, "tiny", spec.hash) == {}


def test_a_seed_that_fails_on_rerun_replaces_its_stored_rows(tmp_path, tiny_spec):
    spec = from_dict(tiny_spec)
    store(tmp_path, run_row(0, spec_hash=spec.hash), history_rows(0, spec_hash=spec.hash))
    store(tmp_path, results.failed_row(spec, 0, None, "RuntimeError: later"), [])
    runs = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    assert runs["status"].tolist() == ["failed"]
    assert results.stored_history(tmp_path, "tiny").empty


def test_stored_runs_and_finished_runs(tmp_path):
    assert results.stored_runs(tmp_path, "tiny").empty
    assert list(results.stored_runs(tmp_path, "tiny").columns) == results.RUN_COLUMNS
    assert results.stored_history(tmp_path, "tiny").empty
    store(tmp_path, run_row(0), history_rows(0))
    store(tmp_path, run_row(1, status="diverged"), history_rows(1))
    store(tmp_path, run_row(2, spec_hash="other"), history_rows(2, spec_hash="other"))
    # diverged is a result
    assert set(results.finished_runs(tmp_path, "tiny", "abc123")) == {(0, None), (1, None)}
    assert set(results.finished_runs(tmp_path, "tiny", "other")) == {(2, None)}
    assert results.stored_runs(tmp_path, "tiny", "abc123")["seed"].tolist() == [0, 1]
    assert len(results.stored_runs(tmp_path, "tiny")) == 3
    assert results.stored_history(tmp_path, "tiny", "other")["seed"].unique().tolist() == [2]


def test_a_run_stored_with_its_spec_writes_spec_json(tmp_path, tiny_spec):
    spec = from_dict(tiny_spec)
    results.store(tmp_path, [(run_row(0, spec_hash=spec.hash), history_rows(0))], specs=[spec])
    assert results.stored_spec(tmp_path, "tiny") == spec.to_dict()
    assert from_dict(json.loads((tmp_path / "tiny" / "spec.json").read_text())) == spec
    assert results.stored_spec(tmp_path, "nothing") is None
    assert leftovers(tmp_path / "tiny") == []


def test_summary_gives_mean_and_std_over_ok_runs():
    runs = pd.DataFrame(
        [
            run_row(0, test_accuracy=0.8),
            run_row(1, test_accuracy=1.0),
            run_row(2, status="failed", test_accuracy=0.0),
            run_row(0, experiment="other", test_accuracy=0.5, val_loss=0.3),
        ]
    ).reindex(columns=results.RUN_COLUMNS)
    table = results.summary(runs).set_index("experiment")
    assert table.loc["tiny", "runs"] == 2
    assert table.loc["tiny", "test_accuracy"] == "0.9000 ± 0.1414"
    assert table.loc["other", "test_accuracy"] == "0.5000 ± 0.0000"
    assert table.loc["other", "val_loss"] == "0.3000 ± 0.0000"
    assert table.loc["tiny", "val_loss"] == ""  # no validation: empty, not NaN
    assert "val_accuracy" not in table.columns  # no experiment has it
    assert "folds" not in table.columns and results.summary_title(runs) == "mean ± std over seeds"


def test_summary_of_cv_runs_is_over_seeds_x_folds_per_experiment():
    """cv rows (one per (seed, fold)) and plain rows in one frame, as `run` concatenates them."""
    cv = [
        run_row(seed, experiment="kfold", fold=fold, test_accuracy=acc)
        for seed, fold, acc in ((0, 0, 0.6), (0, 1, 0.8), (0, 2, 0.7), (1, 0, 0.9), (1, 1, 0.5), (1, 2, 0.7))
    ]
    cv.append(run_row(1, experiment="kfold", fold=3, status="diverged", test_accuracy=0.0))
    plain = [run_row(0, test_accuracy=0.8), run_row(1, test_accuracy=1.0)]
    runs = pd.concat([pd.DataFrame(plain), pd.DataFrame(cv)], ignore_index=True)
    table = results.summary(runs)
    assert list(table.columns[:3]) == ["experiment", "runs", "folds"]
    table = table.set_index("experiment")
    assert table.loc["kfold", "runs"] == 6 and table.loc["kfold", "folds"] == "3"
    acc = [0.6, 0.8, 0.7, 0.9, 0.5, 0.7]  # the diverged run is left out
    assert table.loc["kfold", "test_accuracy"] == f"{np.mean(acc):.4f} ± {np.std(acc, ddof=1):.4f}"
    assert table.loc["kfold", "not_ok"] == "1 diverged"
    assert table.loc["tiny", "runs"] == 2 and table.loc["tiny", "folds"] == ""
    assert table.loc["tiny", "test_accuracy"] == "0.9000 ± 0.1414"
    assert results.summary_title(runs) == (
        "mean ± std over seeds (over seeds x folds for the cv experiments: kfold)"
    )
    assert results.summary_title(pd.DataFrame(cv)) == "mean ± std over seeds x folds"


@pytest.mark.parametrize("spec_hash", ["000123456789", "123e45678901", "1234567890ab"])
def test_spec_hashes_that_look_like_numbers_survive_the_csv(tmp_path, spec_hash):
    store(tmp_path, run_row(0, spec_hash=spec_hash), history_rows(0, spec_hash=spec_hash))
    assert set(results.finished_runs(tmp_path, "tiny", spec_hash)) == {(0, None)}
    assert results.stored_history(tmp_path, "tiny", spec_hash)["epoch"].tolist() == [1, 2]


def test_result_files_are_ordinary_files(tmp_path):
    import os
    import stat

    store(tmp_path, run_row(0), history_rows(0))
    umask = os.umask(0)
    os.umask(umask)
    for name in ("runs.csv", "history.csv"):
        assert stat.S_IMODE((tmp_path / "tiny" / name).stat().st_mode) == 0o666 & ~umask


# -- several processes on one folder --------------------------------------------------------

SAVER = """
import sys
from harness import results
root, first, step, count, epochs = sys.argv[1], *map(int, sys.argv[2:])
for seed in range(first, first + step * count, step):
    results.remove_temp_files(root, "race")  # what every `run` does as it starts
    row = {"experiment": "race", "seed": seed, "spec_hash": "abc123", "status": "ok", "error": "",
           "finished_at": "t"}
    history = [
        {"experiment": "race", "seed": seed, "spec_hash": "abc123", "epoch": e + 1, "loss": 1.0 / (e + 1)}
        for e in range(epochs)
    ]
    results.store(root, [(row, history)])
"""


def test_processes_storing_into_one_folder_at_once_lose_nothing(tmp_path):
    """Four processes store 6 seeds each (a 150-epoch history per seed, so every store rewrites a
    large history.csv) into one folder, each clearing temporary files as `run` does. Without the
    folder lock, runs were lost and a process crashed on a temporary file another one removed."""
    from conftest import PYTHON, ROOT

    procs, seeds, epochs = 4, 6, 150
    children = [
        subprocess.Popen(
            [PYTHON, "-c", SAVER, str(tmp_path), str(k), str(procs), str(seeds), str(epochs)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(procs)
    ]
    errors = [child.communicate(timeout=300)[1] for child in children]
    assert [child.returncode for child in children] == [0] * procs, errors
    runs = pd.read_csv(tmp_path / "race" / "runs.csv")
    history = pd.read_csv(tmp_path / "race" / "history.csv")
    assert sorted(runs["seed"]) == list(range(procs * seeds))  # each run once
    assert history.groupby("seed")["epoch"].apply(list).to_dict() == {
        s: list(range(1, epochs + 1)) for s in range(procs * seeds)
    }
    assert leftovers(tmp_path / "race") == []


def test_a_store_keeps_a_run_another_process_stored_since_planning(tmp_path):
    store(tmp_path, run_row(0, test_accuracy=0.5, pid=1), history_rows(0, loss=1.0))
    [stored] = results.store(
        tmp_path, [(run_row(0, test_accuracy=0.9, pid=2), history_rows(0, loss=7.0))], keep_finished=True
    )
    assert stored["pid"] == 1 and stored["test_accuracy"] == 0.5  # the first one's row is kept
    assert pd.read_csv(tmp_path / "tiny" / "runs.csv")["pid"].tolist() == [1]
    assert pd.read_csv(tmp_path / "tiny" / "history.csv")["loss"].tolist() == [1.0, 0.5]
    # a failed run is not a result: a later one replaces it even so
    store(tmp_path, run_row(1, status="failed"), [])
    results.store(tmp_path, [(run_row(1, pid=3), history_rows(1))], keep_finished=True)
    assert pd.read_csv(tmp_path / "tiny" / "runs.csv")["status"].tolist() == ["ok", "ok"]


def test_temporary_files_of_live_processes_are_kept(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    names = {
        "live": f".runs.csv.{os.getpid()}-abc.tmp",
        "dead": f".history.csv.{dead.pid}-abc.tmp",
        "old": ".spec.json.k3j_x9.tmp",  # an older harness's name, without a pid
    }
    for name in names.values():
        (folder / name).write_text("x")
    results.remove_temp_files(tmp_path, "tiny")
    assert [p.name for p in folder.iterdir()] == [names["live"]]


def test_the_lock_defers_a_stop_signal_until_the_store_is_done(tmp_path):
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append("handled"))
    try:
        with results.locked(tmp_path / "tiny"):
            os.kill(os.getpid(), signal.SIGTERM)
            seen.append("still storing")
        seen.append("after")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == ["still storing", "handled", "after"]


# -- cross-validation: a run is a (seed, fold) -------------------------------------------


def test_cv_runs_are_stored_and_replaced_by_seed_and_fold(tmp_path):
    def fold_history(seed, fold, loss=1.0):
        return [{**h, "fold": fold} for h in history_rows(seed, loss=loss)]

    for seed, fold, accuracy in ((1, 0, 0.5), (0, 1, 0.6), (0, 0, 0.7), (1, 1, 0.8)):
        store(tmp_path, run_row(seed, fold=fold, test_accuracy=accuracy), fold_history(seed, fold))
    store(tmp_path, run_row(0, fold=1, test_accuracy=0.9), fold_history(0, 1, loss=9.0))
    store(tmp_path, run_row(1, fold=0, status="failed"), [])
    runs = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    assert list(runs.columns[:3]) == ["experiment", "seed", "fold"]  # fold right after seed
    assert list(zip(runs["seed"], runs["fold"], runs["test_accuracy"].round(2))) == [
        (0, 0, 0.7),
        (0, 1, 0.9),  # replaced: same seed and fold
        (1, 0, 0.9),  # failed on re-run: its accuracy column keeps run_row's default
        (1, 1, 0.8),
    ]
    assert runs["status"].tolist() == ["ok", "ok", "failed", "ok"]
    history = pd.read_csv(tmp_path / "tiny" / "history.csv")
    assert list(zip(history["seed"], history["fold"], history["epoch"])) == [
        (0, 0, 1),
        (0, 0, 2),
        (0, 1, 1),
        (0, 1, 2),
        (1, 1, 1),
        (1, 1, 2),
    ]
    assert history.loc[(history["seed"] == 0) & (history["fold"] == 1), "loss"].tolist() == [9.0, 4.5]
    assert set(results.finished_runs(tmp_path, "tiny", "abc123")) == {(0, 0), (0, 1), (1, 1)}
    assert results.run_keys(runs) == ["seed", "fold"]


def test_runs_without_folds_keep_the_files_of_before(tmp_path):
    store(tmp_path, run_row(0), history_rows(0))
    assert "fold" not in pd.read_csv(tmp_path / "tiny" / "runs.csv").columns
    assert "fold" not in pd.read_csv(tmp_path / "tiny" / "history.csv").columns
    assert set(results.finished_runs(tmp_path, "tiny", "abc123")) == {(0, None)}
    assert "fold" not in results.failed_row(
        from_dict({"name": "t", "model": [{"class_name": "Dense", "units": 3}]}), 0, None, "x"
    )


def test_atomic_write_writes_bytes_as_they_are(tmp_path):
    results.atomic_write(tmp_path / "a" / "x.png", b"\x89PNG\r\n\x00\xff", binary=True)
    assert (tmp_path / "a" / "x.png").read_bytes() == b"\x89PNG\r\n\x00\xff"
    assert not list((tmp_path / "a").glob(".*.tmp"))
