"""harness.executor: a killed sweep resumes without duplicates; failed runs are stored and the sweep
goes on (or stops with --fail-fast).

Runs are iris, a few epochs (about a second each); the resume test kills a real `python -m harness run`.
"""

import copy
import json
import multiprocessing
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import PYTHON, ROOT, descendants

from harness import cli, executor, registry, results, runner
from harness.spec import from_dict

EPOCHS = 10


def leftovers(root):
    """Temporary files under a results dir (what an interrupted atomic write would leave)."""
    return [str(p) for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def stored_rows(root):
    found = [pd.read_csv(path) for path in root.glob("*/runs.csv")]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=results.RUN_COLUMNS)


def test_a_killed_sweep_resumes_where_it_stopped(tiny_spec, write_experiments, tmp_path, harness_env):
    raw = {
        **copy.deepcopy(tiny_spec),
        "name": "resume",
        "seeds": [0, 1],
        "fit": {"epochs": EPOCHS, "batch_size": 16},
        "search": {"grid": {"compile.optimizer.learning_rate": [0.001, 0.01, 0.1]}},
    }
    raw["compile"]["optimizer"] = {"class_name": "adam", "learning_rate": 0.001}
    d, root = write_experiments([raw]), tmp_path / "res"
    command = [
        PYTHON,
        "-m",
        "harness",
        "--experiments",
        str(d),
        "run",
        "resume",
        "--jobs",
        "1",
        "--engine",
        "per-run",  # run by run, so a kill can fall between two stored runs
        "--results",
        str(root),
    ]
    with open(tmp_path / "first.err", "w") as err:
        first = subprocess.Popen(command, cwd=ROOT, env=harness_env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 300
        while len(stored_rows(root)) < 1 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first.kill()  # SIGKILL: no cleanup of any kind, possibly mid-run or mid-write
        first.wait()
    before = stored_rows(root)
    assert first.returncode == -9 and 1 <= len(before) < 6, (
        first.returncode,
        (tmp_path / "first.err").read_text(),
    )

    again = subprocess.run(command, cwd=ROOT, env=harness_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (
        f"{6 - len(before)} run{'s' if len(before) != 5 else ''} to do "
        f"({len(before)} already stored, skipped)" in again.stderr
    )
    assert f"{len(before)} already stored, skipped (--force re-runs them)" in again.stderr.splitlines()[-1]

    names = [s.name for s in registry.select(registry.discover([d]), ["resume"])]
    assert len(names) == 3
    runs = stored_rows(root)
    assert sorted(zip(runs["experiment"], runs["seed"])) == sorted(
        (n, s) for n in names for s in (0, 1)
    )  # one row per (trial, seed)
    assert (runs["status"] == "ok").all()
    assert runs["pid"].nunique() == 2  # the first process's runs were kept, not redone
    kept = runs.merge(before, on=["experiment", "seed"], suffixes=("", "_before"))
    assert len(kept) == len(before) and (kept["finished_at"] == kept["finished_at_before"]).all()
    for name in names:
        history = pd.read_csv(root / name / "history.csv")
        assert len(history) == 2 * EPOCHS and not history.duplicated(["seed", "epoch"]).any()
        assert history.groupby("seed")["epoch"].apply(list).tolist() == [list(range(1, EPOCHS + 1))] * 2
        assert set(history["spec_hash"].astype(str)) == {
            str(h) for h in pd.read_csv(root / name / "runs.csv", dtype={"spec_hash": str})["spec_hash"]
        }
    assert leftovers(root) == []


def test_remove_temp_files_clears_what_a_killed_write_left(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for name in (".runs.csv.abc123.tmp", ".history.csv.x.tmp", ".spec.json.y.tmp", "runs.csv", ".keep"):
        (folder / name).write_text("x")
    results.remove_temp_files(tmp_path, "tiny")
    assert sorted(p.name for p in folder.iterdir()) == [".keep", "runs.csv"]
    results.remove_temp_files(tmp_path, "absent")  # no folder yet: nothing to do


# -- failures -----------------------------------------------------------------------------


@pytest.fixture
def three_seeds(tiny_spec, write_experiments, tmp_path, monkeypatch):
    """A tiny experiment with seeds 0-2 whose seed 1 raises in run_seed; (argv prefix, results root)."""
    real = runner.run_seed

    def flaky(spec, seed, **kwargs):
        if seed == 1:
            raise RuntimeError("out of luck")
        return real(spec, seed, **kwargs)

    monkeypatch.setattr(runner, "run_seed", flaky)
    tiny_spec["seeds"] = [0, 1, 2]
    d, root = write_experiments([tiny_spec]), tmp_path / "res"
    argv = [
        "--experiments",
        str(d),
        "run",
        "tiny",
        "--jobs",
        "1",
        "--engine",
        "per-run",
        "--results",
        str(root),
    ]
    return argv, root  # per-run: the failure is planted in runner.run_seed


def test_a_failed_run_is_stored_and_the_sweep_goes_on(three_seeds, capsys):
    argv, root = three_seeds
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    runs = pd.read_csv(root / "tiny" / "runs.csv")
    assert runs["seed"].tolist() == [0, 1, 2] and runs["status"].tolist() == ["ok", "failed", "ok"]
    assert runs.loc[1, "error"] == "RuntimeError: out of luck"
    assert (
        "tiny seed 1  failed: RuntimeError: out of luck" in err
        and "1 run(s) failed" in err
        and "--fail-fast" not in err
    )


def test_fail_fast_stops_at_the_first_failed_run(three_seeds, capsys, monkeypatch):
    argv, root = three_seeds
    assert cli.main([*argv, "--fail-fast"]) == 1
    err = capsys.readouterr().err
    runs = pd.read_csv(root / "tiny" / "runs.csv")
    assert runs["seed"].tolist() == [0, 1] and runs["status"].tolist() == [
        "ok",
        "failed",
    ]  # seed 2 never started
    assert (
        "3 runs to do" in err
        and "2 runs in" in err
        and "stopped at the first failed run (--fail-fast)" in err
    )
    monkeypatch.undo()  # the cause is fixed: the next run does the failed seed and the one never started
    assert cli.main(argv) == 0
    assert "2 runs to do (1 already stored, skipped)" in capsys.readouterr().err
    assert pd.read_csv(root / "tiny" / "runs.csv")["status"].tolist() == ["ok"] * 3


def test_fail_fast_in_worker_processes(tiny_spec, tmp_path):
    """Two spawned workers (each imports Keras: ~10-20 s). `precision` on three classes passes
    the pre-check and raises at fit time; the sweep stops there and the workers are gone."""
    broken = {**copy.deepcopy(tiny_spec), "name": "broken"}
    broken["compile"]["metrics"] = ["precision"]
    good = {
        **copy.deepcopy(tiny_spec),
        "name": "good",
        "seeds": list(range(6)),
        "fit": {"epochs": 20, "batch_size": 16},
    }
    specs = [from_dict(raw) for raw in (broken, good)]
    failures = executor.run(specs, tmp_path, jobs=2, fail_fast=True)
    assert [(f["experiment"], f["status"]) for f in failures] == [("broken", "failed")]
    assert "InvalidArgumentError" in pd.read_csv(tmp_path / "broken" / "runs.csv").loc[0, "error"]
    assert len(results.stored_runs(tmp_path, "good")) < 6  # stopped before the sweep's end
    assert multiprocessing.active_children() == []
    assert leftovers(tmp_path) == []


def test_a_learning_rate_too_high_diverges_and_is_not_a_failure(tmp_path):
    """SGD at learning rate 100 on iris: the loss becomes NaN; the run is stored as diverged."""
    specs = registry.discover()
    spec = specs["iris_lr_grid[learning_rate=100.0,class_name=sgd]"].with_seeds([0])
    assert executor.run([spec], tmp_path, jobs=1) == []
    runs = pd.read_csv(tmp_path / spec.name / "runs.csv")
    assert runs["status"].tolist() == ["diverged"] and runs["train_loss"].isna().all()
    assert pd.read_csv(tmp_path / spec.name / "history.csv")["loss"].isna().any()


@pytest.mark.slow  # 50 runs, and a bound on this machine's resident memory
def test_memory_of_each_worker_stays_bounded_over_50_runs(tiny_spec, tmp_path):
    spec = from_dict(
        {
            **copy.deepcopy(tiny_spec),
            "name": "mem",
            "seeds": list(range(50)),
            "fit": {"epochs": 3, "batch_size": 16},
        }
    )
    assert executor.run([spec], tmp_path, jobs=2) == []
    runs = pd.read_csv(tmp_path / "mem" / "runs.csv").sort_values("finished_at", kind="stable")
    assert len(runs) == 50 and runs["pid"].nunique() >= 5  # TensorFlow workers are replaced after 10 runs
    growth = runs.groupby("pid")["peak_rss_mb"].agg(lambda s: s.max() - s.iloc[0])
    assert growth.max() <= 50, growth


@pytest.mark.slow  # "promptly" is a time on this machine
def test_ctrl_c_stops_promptly_and_keeps_finished_runs(tiny_spec, write_experiments, tmp_path, harness_env):
    import signal

    d, root = (
        write_experiments(
            [
                {
                    **copy.deepcopy(tiny_spec),
                    "name": "stop",
                    "seeds": list(range(40)),
                    "fit": {"epochs": 20, "batch_size": 16},
                }
            ]
        ),
        tmp_path / "res",
    )
    command = [
        PYTHON,
        "-m",
        "harness",
        "--experiments",
        str(d),
        "run",
        "stop",
        "--jobs",
        "2",
        "--engine",
        "per-run",  # run by run, so the interrupt falls mid-sweep (one group would finish at once)
        "--results",
        str(root),
    ]
    sweep = subprocess.Popen(
        command,
        cwd=ROOT,
        env=harness_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while len(stored_rows(root)) < 2 and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group gets SIGINT
    start = time.monotonic()
    _, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130 and time.monotonic() - start < 15, err
    assert "interrupted; every finished run is stored" in err and "Traceback" not in err
    runs = stored_rows(root)
    assert 2 <= len(runs) < 40 and not runs.duplicated(["seed"]).any() and (runs["status"] == "ok").all()
    assert leftovers(root) == []


# -- stopping: signals, and workers that outlive their parent ---------------------------------


def alive(pids):
    def running(pid):
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    return [pid for pid in pids if running(pid)]


def start_sweep(tiny_spec, write_experiments, tmp_path, harness_env):
    """A `run --jobs 2` of 40 seeds (TensorFlow: a fork server and two workers), once it has
    stored a run: (process, results root, its descendants then, stderr path)."""
    d, root = (
        write_experiments(
            [{**copy.deepcopy(tiny_spec), "name": "stop", "seeds": list(range(40)), "fit": {"epochs": 20}}]
        ),
        tmp_path / "res",
    )
    # the per-run path: its worker processes are what must not outlive the main process
    command = [PYTHON, "-m", "harness", "--experiments", str(d), "run", "stop", "--jobs", "2"]
    command += ["--engine", "per-run"]
    err = tmp_path / "err.txt"
    sweep = subprocess.Popen(
        [*command, "--results", str(root)],
        cwd=ROOT,
        env={**harness_env, "KERAS_BACKEND": "tensorflow"},
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
        start_new_session=True,  # a signal here reaches only the process it is sent to
    )
    deadline = time.monotonic() + 300
    while len(stored_rows(root)) < 1 and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    children = descendants(sweep.pid)
    assert sweep.poll() is None and len(children) >= 3, err.read_text()  # fork server + 2 workers
    return sweep, root, children, err


def wait_gone(pids, seconds=120):
    """The processes of `pids` still running after waiting up to `seconds` for them to end
    (a fork server with TensorFlow loaded takes a few seconds to exit)."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


@pytest.mark.parametrize(
    "signum, status",
    [
        (signal.SIGTERM, 143),
        pytest.param(signal.SIGHUP, 129, marks=pytest.mark.slow),
    ],
    ids=["SIGTERM", "SIGHUP"],
)
def test_a_stop_signal_keeps_finished_runs_and_leaves_no_process(
    signum, status, tiny_spec, write_experiments, tmp_path, harness_env
):
    sweep, root, children, err = start_sweep(tiny_spec, write_experiments, tmp_path, harness_env)
    os.kill(sweep.pid, signum)  # the main process only, as `timeout`, `kill` or a scheduler does
    assert sweep.wait(timeout=120) == status
    text = err.read_text()
    assert f"stopped by {signal.Signals(signum).name}; every finished run is stored" in text
    assert "Traceback" not in text
    assert wait_gone(children) == []
    runs = stored_rows(root)
    assert 1 <= len(runs) < 40 and not runs.duplicated(["seed"]).any() and (runs["status"] == "ok").all()
    assert leftovers(root) == []


@pytest.mark.slow
def test_workers_end_when_the_main_process_is_killed(tiny_spec, write_experiments, tmp_path, harness_env):
    sweep, root, children, err = start_sweep(tiny_spec, write_experiments, tmp_path, harness_env)
    os.kill(sweep.pid, signal.SIGKILL)  # no cleanup of any kind in the main process
    assert sweep.wait(timeout=60) == -signal.SIGKILL
    assert wait_gone(children) == []


# -- several invocations on one results folder -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["per-run", "vectorized"])
def test_four_invocations_on_one_folder_store_every_run_once(
    engine, tiny_spec, write_experiments, tmp_path, harness_env
):
    """4 `run`s of the same 200 one-epoch seeds into one folder at once (three in-process, one with
    two workers): every run is stored exactly once and every file parses. The vectorized engine
    trains each invocation's 200 runs as one group and stores them together, under the same lock."""
    seeds, epochs = 200, 1
    d, root = (
        write_experiments([{**copy.deepcopy(tiny_spec), "name": "many", "fit": {"epochs": epochs}}]),
        tmp_path / "res",
    )
    command = [PYTHON, "-m", "harness", "--experiments", str(d), "run", "many", "--seeds", str(seeds)]
    command += ["--results", str(root), "--engine", engine]
    runs = [
        subprocess.Popen(
            [*command, "--jobs", jobs],
            cwd=ROOT,
            env=harness_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for jobs in ("1", "1", "1", "2")
    ]
    errors = [run.communicate(timeout=1800)[1] for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, errors
    stored = results.read_csv(root / "many" / "runs.csv")
    history = results.read_csv(root / "many" / "history.csv")
    assert sorted(stored["seed"]) == list(range(seeds)) and (stored["status"] == "ok").all()
    if engine == "per-run":  # run by run, the work is shared, not done four times over
        assert stored["pid"].nunique() >= 2
    assert len(history) == seeds * epochs and not history.duplicated(["seed", "epoch"]).any()
    assert set(history["seed"]) == set(range(seeds))
    assert set(history["spec_hash"]) == set(stored["spec_hash"])
    assert json.loads((root / "many" / "spec.json").read_text())["name"] == "many"
    assert leftovers(root) == []
