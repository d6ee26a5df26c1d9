"""harness.training.scheduler: the one loop, the same at every place (this process, worker processes,
Ray tasks) with either trainer (vectorized, per-run).

Each (place, trainer) combination trains one small sweep twice (iris, a 4-3 net, 2 epochs): first
with a run stored beforehand, two runs another invocation stores meanwhile, a planted failure and,
with workers, a worker that dies; then again with force and fail-fast. The tests assert on the files
and on what the progress display heard. Ctrl-C interrupts a real `python -m harness run`.

This process runs Keras on TensorFlow, so the vectorized trainer in this process (`Here`) runs in a
subprocess on JAX: this file run as a script, which prints what it saw as JSON.
"""

import copy
import dataclasses
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import PYTHON, ROOT, TINY, descendants, run_row

from harness import results
from harness.errors import HarnessError, SpecError
from harness.spec import from_dict
from harness.training import groups, scheduler, shapes

TESTS = Path(__file__).resolve().parent  # this module, which Ray workers import (the planted groups)
EPOCHS = 2
BEFORE, MEANWHILE = "stored before", "stored meanwhile"  # the finished_at of runs another invocation stored
METRICS = ["epochs_run", "best_epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "params"]


def raw(name, units=4, seeds=(0,), epochs=EPOCHS, **sections):
    """A tiny iris experiment dict; `units` of its hidden layer sets the program it compiles to (under
    a sigmoid, whose units zeros would not pad)."""
    out = {
        **copy.deepcopy(TINY),
        "name": name,
        "seeds": list(seeds),
        "fit": {"epochs": epochs, "batch_size": 16},
    }
    out["model"][0].update(units=units, activation="sigmoid")
    return {**out, **sections}


def tiny(name, units=4, seeds=(0,), epochs=EPOCHS, **sections):
    return from_dict(raw(name, units, seeds, epochs, **sections))


def stored_by_another(root, spec, seed, when):
    """Store a finished run of `spec` as another invocation would (no history; finished_at `when`)."""
    results.store(root, [(run_row(spec, seed, finished_at=when), [])], [spec])


def leftovers(root):
    """Temporary files under a results folder (what an interrupted atomic write would leave)."""
    return [str(p) for p in Path(root).rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def stored(root, name, what="runs"):
    path = Path(root) / name / f"{what}.csv"
    return pd.read_csv(path, dtype={"spec_hash": str}) if path.exists() else None


def stored_rows(root):
    found = [pd.read_csv(path) for path in Path(root).glob("*/runs.csv")]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=results.RUN_COLUMNS)


class Recorder:
    """A stand-in for harness.progress.Progress that remembers what it is told. `meanwhile` runs when
    the first group has gone to its place (another invocation storing runs then)."""

    def __init__(self, meanwhile=None):
        self.total = self.skipped = None
        self.groups, self.rows, self.epochs, self.finished = [], [], 0, False
        self.meanwhile = meanwhile

    def start(self, total, skipped=0):
        self.total, self.skipped = total, skipped

    def started(self, group):
        self.groups.append([[spec.name, seed, fold] for spec, seed, fold in group.runs])
        if self.meanwhile:
            self.meanwhile()
            self.meanwhile = None

    def epoch(self, epoch):
        self.epochs += 1

    def done(self, row):
        self.rows.append(row)

    def finish(self):
        self.finished = True

    def record(self, failures):
        """What it heard, and the failed rows the loop returned, as JSON-ready data."""
        brief = lambda row: {  # noqa: E731
            "experiment": row["experiment"],
            "seed": int(row["seed"]),
            "status": row["status"],
            "error": row.get("error") if isinstance(row.get("error"), str) else "",
            "finished_at": row["finished_at"],
        }
        return {
            "total": self.total,
            "skipped": self.skipped,
            "groups": self.groups,
            "epochs": self.epochs,
            "rows": [brief(row) for row in self.rows],
            "finished": self.finished,
            "failures": [brief(row) for row in failures],
        }


# -- planted groups: picklable (module-level), so worker processes and Ray tasks can train them --------


class Raises(groups.Group):
    """A planted failure: the group's trainer raises."""

    def train(self, on_epoch=None):
        raise RuntimeError("planted failure\nits second line")


class Dies(groups.Group):
    """A worker that dies mid-group: the process training it ends once its first run has trained."""

    def train(self, on_epoch=None):
        for _ in super().train(on_epoch):
            os._exit(3)


PLANTED = {"broken": Raises, "dies": Dies}


def planting(form):
    """groups.form, with the groups of experiments 'broken' and 'dies' replaced by planted ones."""

    def planted(*args, **kwargs):
        queue, notes = form(*args, **kwargs)
        fields = lambda group: {f.name: getattr(group, f.name) for f in dataclasses.fields(group)}  # noqa: E731
        return [PLANTED.get(g.runs[0][0].name, type(g))(**fields(g)) for g in queue], notes

    return planted


# -- the sweep, at one place with one trainer --------------------------------------------------------

PLACES = {"here": {"jobs": 1}, "pool": {"jobs": 2}, "ray": {"jobs": 2, "executor": "ray"}}
CASES = [
    pytest.param("here", "per-run", id="here-per-run"),
    pytest.param("here", "vectorized", id="here-vectorized"),
    # slow: a fork server imports TensorFlow (its workers, a replacement included, fork from it); the
    # default suite's pool is tests/test_api.py's script with two workers
    pytest.param("pool", "per-run", id="pool-per-run", marks=pytest.mark.slow),
    # slow: two spawned workers import Keras and JAX afresh, twice
    pytest.param("pool", "vectorized", id="pool-vectorized", marks=pytest.mark.slow),
    pytest.param("ray", "per-run", id="ray-per-run", marks=pytest.mark.slow),
    pytest.param("ray", "vectorized", id="ray-vectorized", marks=pytest.mark.slow),
]


def sweep_specs(place):
    """plain (seeds 0-2) and wide (seeds 0-1) train; broken (seeds 0-1) raises; with workers, dies (seed 0)
    kills its worker. Each compiles to its own program, so each is a group of its own."""
    specs = [tiny("plain", 4, range(3)), tiny("wide", 8, range(2)), tiny("broken", 5, range(2))]
    return specs + ([tiny("dies", 6)] if place != "here" else [])


def sweep(place, trainer, root):
    """Train the sweep into `root` twice: plain seed 0 stored before, plain seed 1 and wide seed 1 stored
    by another invocation once the first group has started; then again with force and fail-fast, with
    one more experiment, `last`, stored before and queued after the failures. The files after the first
    time are copied to `root`-first. Returns what each time's progress display heard."""
    root = Path(root)
    specs, last = sweep_specs(place), tiny("last", 7)
    plain, wide = specs[:2]
    options = dict(PLACES[place], engine=trainer)
    form, groups.form = groups.form, planting(groups.form)
    try:
        stored_by_another(root, plain, 0, BEFORE)
        first = Recorder(meanwhile=lambda: [stored_by_another(root, s, 1, MEANWHILE) for s in (plain, wide)])
        failures = scheduler.run(specs, scheduler.RunOptions(str(root), progress=first, **options))
        shutil.copytree(root, f"{root}-first")
        stored_by_another(root, last, 0, BEFORE)
        second = Recorder()
        again = scheduler.RunOptions(str(root), progress=second, force=True, fail_fast=True, **options)
        stopped = scheduler.run([*specs, last], again)
    finally:
        groups.form = form
    return {
        "pid": os.getpid(),
        "first": first.record(failures),
        "second": second.record(stopped),
        "children": [p.pid for p in multiprocessing.active_children()],
    }


def keras_backend():
    """The Keras backend of this process (brought up the harness's way if it is not yet)."""
    from harness.training.backend import keras

    return keras.backend.backend()


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with two CPUs, started here so that the Ray cases share it (RayTasks finds it running
    and leaves it up). Its workers import this checkout and this module (the planted groups)."""
    ray = pytest.importorskip("ray")  # only a guard: the test command installs the ray extra
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_ADDRESS")}
    os.environ.pop("RAY_ADDRESS", None)  # a local Ray, whatever this shell points at
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "tests"), str(TESTS)] + [saved["PYTHONPATH"]] * bool(saved["PYTHONPATH"])
    )
    quiet = {"log_to_driver": False, "include_dashboard": False, "logging_level": logging.ERROR}
    ray.init(address="local", num_cpus=2, configure_logging=True, **quiet)
    yield ray
    ray.shutdown()
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.update({key: value})


@pytest.fixture(scope="module")
def jax_process(tmp_path_factory):
    """What this file run as a script on JAX saw: the sweep here with the vectorized trainer, and a cv
    spec on the engine against the per-run trainer. Computed once, on first use."""
    found = {}

    def get():
        if not found:
            root = tmp_path_factory.mktemp("jax")
            env = {k: v for k, v in os.environ.items() if k != "HARNESS_EXPERIMENTS"}
            env.update(KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
            done = subprocess.run(
                [PYTHON, __file__, str(root)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, done.stderr[-3000:]
            found.update(json.loads(done.stdout.strip().splitlines()[-1]), root=root)
        return found

    return get


@pytest.fixture(scope="module")
def swept(tmp_path_factory, request, jax_process):
    """swept(place, trainer) -> (root, what the progress display heard): the sweep, run once per module."""
    done = {}

    def get(place, trainer):
        if (place, trainer) not in done:
            if place == "ray":
                request.getfixturevalue("local_ray")
            if place == "pool" and keras_backend() == "jax":  # vectorized groups would train here
                pytest.skip("this process's Keras runs on JAX: no worker pool for the vectorized trainer")
            if place == "here" and trainer == "vectorized" and keras_backend() != "jax":
                done[place, trainer] = jax_process()["root"] / "sweep", jax_process()["sweep"]
            else:
                root = tmp_path_factory.mktemp(f"{place}-{trainer}") / "results"
                done[place, trainer] = root, sweep(place, trainer, root)
        return done[place, trainer]

    return get


def trained(place, trainer):
    """The runs the first time trains (not those stored by another invocation), in queue order."""
    runs = [("plain", 1), ("plain", 2), ("wide", 0), ("broken", 0), ("broken", 1)]
    return runs + ([("dies", 0)] if place != "here" else [])


@pytest.mark.parametrize("place, trainer", CASES)
def test_runs_are_stored_once_and_runs_stored_by_another_invocation_are_kept(place, trainer, swept):
    root, seen = swept(place, trainer)
    first = Path(f"{root}-first")
    plain, wide = stored(first, "plain"), stored(first, "wide")
    assert list(plain.columns) == results.RUN_COLUMNS
    assert plain["seed"].tolist() == [0, 1, 2] and wide["seed"].tolist() == [0, 1]
    # seed 0 was stored before (skipped), seed 1 meanwhile (kept though it trained)
    assert (
        plain["finished_at"].tolist()[:2] == [BEFORE, MEANWHILE] and wide.loc[1, "finished_at"] == MEANWHILE
    )
    mine = pd.concat([plain[plain["seed"] >= 2], wide[wide["seed"] == 0]])
    assert (mine["status"] == "ok").all() and (mine["epochs_run"] == EPOCHS).all()
    if place == "here":
        assert set(mine["pid"]) == {seen["pid"]}
    else:
        assert seen["pid"] not in set(mine["pid"])  # trained in workers
    if trainer == "vectorized":
        assert plain["pipeline"].tolist()[2:] == ["jax.vmap group of 2"]  # seed 1 trained too, then kept
        assert wide.loc[0, "pipeline"] == "jax.vmap group of 1"  # seed 1 was left out before it started
        assert set(mine["backend"]) == {"jax"}
    else:
        assert not mine["pipeline"].str.startswith("jax.vmap").any()
    for name, seeds in (("plain", [2]), ("wide", [0])):
        history = stored(first, name, "history")
        assert list(zip(history["seed"], history["epoch"])) == [
            (s, e) for s in seeds for e in range(1, EPOCHS + 1)
        ]
    for spec in sweep_specs(place):
        assert results.stored_spec(first, spec.name) == spec.to_dict()
    assert leftovers(first) == [] and leftovers(root) == []


@pytest.mark.parametrize("place, trainer", CASES)
def test_progress_hears_one_start_per_group_and_one_done_per_run(place, trainer, swept):
    _, seen = swept(place, trainer)
    first = seen["first"]
    runs = trained(place, trainer) + [("wide", 1)]
    assert (first["total"], first["skipped"], first["finished"]) == (len(runs), 1, True)
    if trainer == "vectorized":
        by_name = {}
        for name, seed in trained(place, trainer):
            by_name.setdefault(name, []).append([name, seed, None])
        assert first["groups"] == list(by_name.values())
    else:
        assert first["groups"] == [[[name, seed, None]] for name, seed in trained(place, trainer)]
    assert sorted((r["experiment"], r["seed"]) for r in first["rows"]) == sorted(runs)  # each run once
    kept = {(r["experiment"], r["seed"]) for r in first["rows"] if r["finished_at"] == MEANWHILE}
    assert kept == {("plain", 1), ("wide", 1)}  # told as stored, as the files have them
    second = seen["second"]  # force: nothing skipped; fail-fast: it stops after the first failed group
    assert (second["total"], second["skipped"], second["finished"]) == (len(runs) + 2, 0, True)
    heard = [(r["experiment"], r["seed"]) for r in second["rows"]]
    started = [(name, seed) for group in second["groups"] for name, seed, _ in group]
    assert len(set(heard)) == len(heard) and set(heard) <= set(started)
    if place == "here":  # one group at a time, up to the failed one; each of their runs is heard
        assert second["groups"][-1][0][0] == "broken" and heard == started
    else:
        assert ("broken", 0) in started
    # the epochs of a run trained here by Keras' fit (the per-run trainer in this process)
    assert first["epochs"] == (EPOCHS * 3 if (place, trainer) == ("here", "per-run") else 0)


@pytest.mark.parametrize("place, trainer", CASES)
def test_failed_runs_are_rows_with_one_error_format(place, trainer, swept):
    root, seen = swept(place, trainer)
    first = Path(f"{root}-first")
    failures = seen["first"]["failures"]
    # sorted: with workers, two groups of one end in either order
    planted = sorted(
        (f["experiment"], f["seed"], f["error"]) for f in failures if f["experiment"] == "broken"
    )
    assert planted == [
        ("broken", 0, "RuntimeError: planted failure"),
        ("broken", 1, "RuntimeError: planted failure"),
    ]
    broken = stored(first, "broken")
    assert broken["status"].tolist() == ["failed"] * 2
    assert broken["error"].tolist() == ["RuntimeError: planted failure"] * 2  # the first line only
    assert set(broken["backend"]) == {"jax" if trainer == "vectorized" else groups.default_backend()}
    assert stored(first, "broken", "history") is None  # nothing to write: no epoch ran
    if place != "here":
        died = [f["error"] for f in failures if f["experiment"] == "dies"]
        assert stored(first, "dies")["error"].tolist() == died and len(died) == 1
        if place == "pool":
            assert re.fullmatch(r"RuntimeError: worker \d+ died \(exit code 3\)", died[0]), died
        else:
            assert died[0].startswith("WorkerCrashedError: The worker died unexpectedly"), died
    assert sorted((f["experiment"], f["seed"]) for f in failures) == [
        run for run in sorted(trained(place, trainer)) if run[0] in ("broken", "dies")
    ]


@pytest.mark.parametrize("place, trainer", CASES)
def test_force_trains_stored_runs_again_and_fail_fast_stops_at_the_first_failed_run(place, trainer, swept):
    root, seen = swept(place, trainer)
    second = seen["second"]
    first_failed = [("broken", 0), ("broken", 1)] if trainer == "vectorized" else [("broken", 0)]  # one group
    assert [(f["experiment"], f["seed"]) for f in second["failures"]] == first_failed
    assert {f["error"] for f in second["failures"]} == {"RuntimeError: planted failure"}
    assert stored(root, "last")["finished_at"].tolist() == [BEFORE]  # queued after the failure: never started
    assert seen["children"] == []  # the workers were stopped
    runs, before = stored(root, "plain"), stored(Path(f"{root}-first"), "plain")
    heard = {(r["experiment"], r["seed"]): r for r in second["rows"]}
    for seed, row in runs.set_index("seed").iterrows():
        if ("plain", seed) in heard:  # trained again (force), its row replaced
            assert row["finished_at"] == heard["plain", seed]["finished_at"] not in (BEFORE, MEANWHILE)
    if place == "here":  # one group at a time: everything queued before the failure trained
        assert {("plain", s) for s in range(3)} | {("wide", 0), ("wide", 1)} <= set(heard)
    if ("plain", 2) in heard:  # the same seed trained again: the same numbers
        now, then = (frame.set_index("seed").loc[2, METRICS].astype(float) for frame in (runs, before))
        # on the engine, to float32 rounding: a group of 3 runs (this time) is another program than one of 2
        assert now.tolist() == pytest.approx(then.tolist(), rel=1e-6 if trainer == "vectorized" else 0, abs=0)


@pytest.mark.parametrize("place, trainer", [c for c in CASES if c.values[0] != "here"])
def test_the_numbers_do_not_depend_on_the_place(place, trainer, swept):
    """Seeded and single-threaded: a worker process or a Ray task trains what this process trains."""
    there, _ = swept(place, trainer)
    here, _ = swept("here", trainer)
    for name, seeds in (("plain", [2]), ("wide", [0])):
        a, b = (stored(Path(f"{root}-first"), name) for root in (here, there))
        a, b = (frame[frame["seed"].isin(seeds)].reset_index(drop=True) for frame in (a, b))
        pd.testing.assert_frame_equal(b[["seed", *METRICS]], a[["seed", *METRICS]], check_exact=True)
        history = [stored(Path(f"{root}-first"), name, "history") for root in (here, there)]
        pd.testing.assert_frame_equal(history[1], history[0], check_exact=True)


# -- planning: what is still to run ----------------------------------------------------------------


def test_pending_skips_finished_runs_of_the_same_spec_unless_force(tmp_path):
    spec = tiny("tiny", seeds=range(3))
    rows = [
        run_row(spec, seed, status=status) for seed, status in ((0, "ok"), (1, "diverged"), (2, "failed"))
    ]
    results.store(tmp_path, [(row, []) for row in rows], [spec])
    todo, skipped = scheduler.pending([spec.with_seeds(range(4))], tmp_path)
    # a diverged run is a result (seeded, it diverges again); a failed one is tried again; seed 3 is new
    assert [(s.name, seed, fold) for s, seed, fold in todo] == [("tiny", 2, None), ("tiny", 3, None)]
    assert skipped == 2
    todo, skipped = scheduler.pending([spec], tmp_path, force=True)
    assert [seed for _, seed, _ in todo] == [0, 1, 2] and skipped == 0
    changed = spec.with_overrides({"fit.epochs": 3}, name="tiny")  # same name, another spec hash
    todo, skipped = scheduler.pending([changed], tmp_path)
    assert [seed for _, seed, _ in todo] == [0, 1, 2] and skipped == 0


def test_pending_of_a_cv_spec_is_by_seed_and_fold(tmp_path):
    spec = tiny("cv", seeds=[0, 1], data={"dataset": "iris", "cv": {"folds": 3}})
    todo, _ = scheduler.pending([spec], tmp_path)
    assert [(seed, fold) for _, seed, fold in todo] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    rows = [run_row(spec, 0, fold) for fold in range(3)]
    results.store(tmp_path, [(row, []) for row in rows], [spec])
    todo, skipped = scheduler.pending([spec], tmp_path)
    assert [(seed, fold) for _, seed, fold in todo] == [(1, 0), (1, 1), (1, 2)] and skipped == 3


# -- before anything trains -------------------------------------------------------------------------


def test_a_spec_keras_rejects_stops_everything_before_anything_trains(tmp_path):
    bad = raw("bad")
    bad["model"][0]["class_name"] = "Dens"
    recorder = Recorder()
    options = scheduler.RunOptions(str(tmp_path), jobs=1, engine="per-run", progress=recorder)
    with pytest.raises(SpecError, match="Did you mean 'Dense'") as caught:
        scheduler.run([tiny("good"), from_dict(bad)], options)
    assert caught.value.path == "model.0.class_name"
    assert recorder.total is None and stored(tmp_path, "good") is None  # nothing started


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_jobs_below_one_or_not_a_count_is_refused(tmp_path, jobs):
    with pytest.raises(HarnessError, match=r"jobs=.*: must be at least 1"):
        scheduler.run([tiny("tiny")], scheduler.RunOptions(str(tmp_path), jobs=jobs))
    assert not (tmp_path / "tiny").exists()


# -- a group the vectorized trainer cannot take -------------------------------------------------------


class Refuses(groups.Group):
    """A planted group the vectorized trainer cannot take (in this process: it says so at once)."""

    def train(self, on_epoch=None):
        raise shapes.Unsupported("a planted reason")


def test_a_group_the_vectorized_trainer_cannot_take_trains_again_run_by_run(tmp_path, monkeypatch, capsys):
    spec = tiny("tiny", seeds=[0, 1])
    backend = keras_backend()  # this process: the runs train here, whatever trainer they go to
    monkeypatch.setattr(
        groups, "form", lambda todo, *args, **kwargs: ([Refuses(tuple(todo), "vectorized", backend)], [])
    )
    recorder = Recorder()
    assert scheduler.run([spec], scheduler.RunOptions(str(tmp_path), jobs=1, progress=recorder)) == []
    assert "per-run path for tiny (seeds 0, 1): a planted reason" in capsys.readouterr().err
    assert recorder.groups == [
        [["tiny", 0, None], ["tiny", 1, None]],
        [["tiny", 0, None]],
        [["tiny", 1, None]],
    ]
    assert [(r["seed"], r["status"]) for r in recorder.rows] == [(0, "ok"), (1, "ok")]
    runs = stored(tmp_path, "tiny")
    assert runs["seed"].tolist() == [0, 1] and not runs["pipeline"].str.startswith("jax.vmap").any()


# -- Ctrl-C and other stop signals: a real `python -m harness run` --------------------------------------

# epochs of the long experiment: seconds of training, so that the signal finds a group in flight
LONG = {"per-run": 500, "vectorized": 100000}


def alive(pids):
    def running(pid):
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    return [pid for pid in pids if running(pid)]


def wait_gone(pids, seconds=120):
    """The processes of `pids` still running after waiting up to `seconds` for them to end (a guard
    against a hang, not a measurement: a fork server with TensorFlow loaded takes seconds to exit)."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def start_run(place, trainer, tmp_path, write_experiments, env):
    """`python -m harness run first long` at `place` with `trainer`, once `first` (one short run) is
    stored and `long`'s first group trains: (process, results root, its processes then, stderr path)."""
    if place == "ray":
        pytest.importorskip("ray")  # CI installs no Ray: the other places still run
    d = write_experiments([raw("first", 4), raw("long", 8, range(4), epochs=LONG[trainer])])
    root, err = tmp_path / "res", tmp_path / "err.txt"
    command = [PYTHON, "-m", "harness", "--experiments", str(d), "run", "first", "long", "--engine", trainer]
    command += ["--jobs", str(PLACES[place]["jobs"]), "--results", str(root)]
    command += ["--executor", "ray"] if place == "ray" else []
    with err.open("w") as stream:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={k: v for k, v in env.items() if k != "RAY_ADDRESS"},
            stdout=subprocess.DEVNULL,
            stderr=stream,
            start_new_session=True,  # its own process group, as a shell gives a command
        )
    deadline = time.monotonic() + 600  # a guard against a hang, not a measurement
    while stored(root, "first") is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, err.read_text()
    return process, root, descendants(process.pid), err


def assert_stopped_keeping_stored_runs(process, root, children, err, status, message):
    assert process.wait(timeout=600) == status, err.read_text()
    text = err.read_text()
    assert message in text and "Traceback" not in text, text
    assert wait_gone(children) == []  # no worker, fork server or Ray process left
    runs = stored_rows(root)
    assert runs.loc[runs["experiment"] == "first", "status"].tolist() == ["ok"]
    assert (runs["status"] == "ok").all() and not runs.duplicated(["experiment", "seed"]).any()
    assert (runs["experiment"] == "long").sum() < 4  # the group in flight was dropped
    assert leftovers(root) == []


CTRL_C = [
    pytest.param("here", "per-run", id="here-per-run", marks=pytest.mark.slow),
    pytest.param("here", "vectorized", id="here-vectorized"),
    pytest.param("pool", "per-run", id="pool-per-run", marks=pytest.mark.slow),
    pytest.param("pool", "vectorized", id="pool-vectorized", marks=pytest.mark.slow),
    pytest.param("ray", "per-run", id="ray-per-run", marks=pytest.mark.slow),
    pytest.param("ray", "vectorized", id="ray-vectorized", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("place, trainer", CTRL_C)
def test_ctrl_c_mid_group_exits_130_keeping_stored_runs_and_leaves_no_process(
    place, trainer, tmp_path, write_experiments, harness_env
):
    process, root, children, err = start_run(place, trainer, tmp_path, write_experiments, harness_env)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group gets SIGINT
    assert_stopped_keeping_stored_runs(
        process, root, children, err, 130, "interrupted; every finished run is stored"
    )


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_to_the_main_process_alone_stops_as_ctrl_c_does(
    signum, tmp_path, write_experiments, harness_env
):
    """As `timeout`, `kill` or a batch scheduler sends it: to the main process only; exit 128 + signal."""
    process, root, children, err = start_run("pool", "per-run", tmp_path, write_experiments, harness_env)
    os.kill(process.pid, signum)
    assert_stopped_keeping_stored_runs(
        process,
        root,
        children,
        err,
        128 + signum,
        f"stopped by {signal.Signals(signum).name}; every finished run",
    )


@pytest.mark.slow
def test_workers_end_when_the_main_process_is_killed(tmp_path, write_experiments, harness_env):
    process, root, children, err = start_run("pool", "per-run", tmp_path, write_experiments, harness_env)
    assert len(children) >= 3, err.read_text()  # a fork server and two workers
    os.kill(process.pid, signal.SIGKILL)  # no cleanup of any kind in the main process
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert wait_gone(children) == []


@pytest.mark.slow
def test_a_killed_sweep_resumes_where_it_stopped(tmp_path, write_experiments, harness_env):
    """SIGKILL mid-sweep (possibly mid-write), then the same command: every run once, the first
    process's runs kept, no temporary file left."""
    process, root, _, err = start_run("here", "per-run", tmp_path, write_experiments, harness_env)
    process.kill()
    process.wait()
    before = stored_rows(root)
    command = [
        PYTHON,
        "-m",
        "harness",
        "--experiments",
        str(tmp_path / "experiments"),
        "run",
        "first",
        "long",
    ]
    command += ["--jobs", "1", "--engine", "per-run", "--results", str(root)]
    done = subprocess.run(command, cwd=ROOT, env=harness_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert f"{5 - len(before)} runs to do ({len(before)} already stored, skipped)" in done.stderr
    runs = stored_rows(root)
    assert sorted(zip(runs["experiment"], runs["seed"])) == [("first", 0)] + [("long", s) for s in range(4)]
    kept = runs.merge(before, on=["experiment", "seed"], suffixes=("", "_before"))
    assert len(kept) == len(before) and (kept["finished_at"] == kept["finished_at_before"]).all()
    history = stored(root, "long", "history")
    assert not history.duplicated(["seed", "epoch"]).any()
    assert leftovers(root) == []


# -- Ray: the progress display as the command line shows it --------------------------------------------


@pytest.mark.slow  # a local Ray starts: half a minute
@pytest.mark.parametrize("trainer", ["vectorized", "per-run"])  # a group per task; a run per task
def test_executor_ray_prints_a_progress_line_per_run(trainer, tmp_path, write_experiments, harness_env):
    pytest.importorskip("ray")
    d = write_experiments([raw("rayt", 4, range(2)), raw("rayt_wide", 8, range(2))])
    command = [PYTHON, "-m", "harness", "--experiments", str(d), "run", "rayt*", "--executor", "ray"]
    command += ["--jobs", "2", "--engine", trainer, "--results", str(tmp_path / "res")]
    env = {k: v for k, v in harness_env.items() if k != "RAY_ADDRESS"}  # a local Ray started on demand
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()  # the progress display and nothing else: no Ray noise
    assert lines[0] == "4 runs to do" and lines[-1].startswith("4 runs in ") and len(lines) == 6, done.stderr
    assert sorted(re.sub(r"^\[\d/4\] ", "", line).split("  ")[0] for line in lines[1:-1]) == [
        f"{name} seed {seed}" for name in ("rayt", "rayt_wide") for seed in (0, 1)
    ]
    assert "rayt_wide" in done.stdout and "mean ± std over seeds" in done.stdout


# -- several processes at once, many runs ----------------------------------------------------------------


@pytest.mark.slow  # 50 runs, and a bound on this machine's resident memory
def test_memory_of_each_worker_stays_bounded_over_50_runs(tmp_path):
    spec = tiny("mem", seeds=range(50), epochs=3)
    options = scheduler.RunOptions(str(tmp_path), jobs=2, engine="per-run", backend="tensorflow")
    assert scheduler.run([spec], options) == []
    runs = stored(tmp_path, "mem").sort_values("finished_at", kind="stable")
    assert len(runs) == 50 and runs["pid"].nunique() >= 5  # TensorFlow workers are replaced after 10 runs
    growth = runs.groupby("pid")["peak_rss_mb"].agg(lambda s: s.max() - s.iloc[0])
    assert growth.max() <= 50, growth


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["per-run", "vectorized"])
def test_four_invocations_on_one_folder_store_every_run_once(
    trainer, tmp_path, write_experiments, harness_env
):
    """4 `run`s of the same 200 one-epoch seeds into one folder at once (three in this process, one with
    two workers): every run is stored exactly once and every file parses. The vectorized engine trains
    each invocation's 200 runs as one group and stores them together, under the same lock."""
    seeds, epochs = 200, 1
    d, root = write_experiments([raw("many", epochs=epochs)]), tmp_path / "res"
    command = [PYTHON, "-m", "harness", "--experiments", str(d), "run", "many", "--seeds", str(seeds)]
    command += ["--results", str(root), "--engine", trainer]
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
    runs, history = stored(root, "many"), stored(root, "many", "history")
    assert sorted(runs["seed"]) == list(range(seeds)) and (runs["status"] == "ok").all()
    if trainer == "per-run":  # run by run, the work is shared, not done four times over
        assert runs["pid"].nunique() >= 2
    assert len(history) == seeds * epochs and not history.duplicated(["seed", "epoch"]).any()
    assert set(history["spec_hash"]) == set(runs["spec_hash"])
    assert json.loads((root / "many" / "spec.json").read_text())["name"] == "many"
    assert leftovers(root) == []


# -- cross-validation on the engine -------------------------------------------------------------------


def cv_on_the_engine(root):
    """A cv spec (1 seed x 3 folds) through the scheduler on the engine, and each of its runs by the
    per-run trainer, in this process (Keras on JAX): their groups, rows and losses per epoch."""
    from harness.training import per_run

    # no shuffle: the engine draws its own batch order (jax.random), the same for any place it trains
    spec = tiny("cv", seeds=[0], epochs=3, data={"dataset": "iris", "cv": {"folds": 3}})
    spec = spec.with_overrides({"fit.shuffle": False}, name="cv")
    recorder = Recorder()
    scheduler.run([spec], scheduler.RunOptions(str(root), jobs=1, progress=recorder))
    runs, history = stored(root, "cv"), stored(root, "cv", "history")
    columns = ["seed", "fold", "pipeline", *METRICS]
    engine = [
        {
            **row,
            "loss": history[(history["seed"] == row["seed"]) & (history["fold"] == row["fold"])][
                "loss"
            ].tolist(),
        }
        for row in runs[columns].to_dict("records")
    ]
    alone = []
    for seed, fold in zip(runs["seed"], runs["fold"]):
        row, epochs = per_run.run(spec, int(seed), int(fold))
        alone.append({**{k: row[k] for k in columns}, "loss": [e["loss"] for e in epochs]})
    return {"groups": recorder.groups, "engine": engine, "per_run": alone}


def test_cv_runs_train_on_the_engine_as_the_per_run_trainer_trains_them(jax_process):
    found = jax_process()["cv"]
    assert found["groups"] == [[["cv", 0, fold] for fold in range(3)]]  # the folds: one group, per-run data
    assert [row["pipeline"] for row in found["engine"]] == ["jax.vmap group of 3"] * 3
    assert len({row["test_loss"] for row in found["engine"]}) == 3  # three held-out folds
    for engine, alone in zip(found["engine"], found["per_run"]):
        assert (engine["seed"], engine["fold"]) == (alone["seed"], alone["fold"])
        for key in [*METRICS, "loss"]:
            assert engine[key] == pytest.approx(alone[key], rel=1e-6), key


if __name__ == "__main__":  # on JAX (see jax_process): what the tests above assert on, as JSON
    where = Path(sys.argv[1])
    print(
        json.dumps(
            {"sweep": sweep("here", "vectorized", where / "sweep"), "cv": cv_on_the_engine(where / "cv")}
        )
    )
