"""`python -m harness bench`: the speed and memory targets, measured side by side in one run.

Every comparison runs both sides in the same invocation, interleaved, and reports medians
and ratios, so a busy machine slows both alike. Each backend is measured in its own
subprocess (Keras picks its backend once per process). Writes results/bench.csv.
"""

import contextlib
import importlib.util
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

TARGETS = {
    ("fit", "tensorflow", "iris_baseline"): 0.25,
    ("fit", "jax", "iris_baseline"): 0.12,
    ("cold_run", None, "iris_baseline"): 1.0,
    ("sweep_speedup", None, None): 1.6,
    ("memory_growth_mb", None, None): 50.0,
    ("list_seconds", None, None): 0.5,
    # the vectorized engine (issue 12)
    ("engine_cold_run", None, None): 0.5,
    ("engine_warm_run", None, None): 0.35,
    ("tuner_grid", None, None): 0.05,
    ("seeds_100_vs_5", None, None): 1.5,
    ("sweep_500_peak_mb", None, None): 1536.0,
    # a whole suite as one program (issue 20)
    ("suite_vs_per_run", None, None): 0.1,
    ("suite_vs_before", None, None): 0.5,
    ("suite_programs", None, None): 2,
    ("doctor_cold", None, None): 30.0,
    ("doctor_vs_before", None, None): 0.3,
}
# The engine the issue-20 rows compare with, measured in the same run (`bench --before REF`): main
# just before issue 20.
BEFORE_REF = "b167e2b"
TUNER_RATES = [0.0001, 0.001, 0.01, 0.1, 1.0]
IRIS_NET = [
    {"class_name": "Dense", "units": 4, "activation": "relu"},
    {"class_name": "Dense", "units": 3, "activation": "softmax"},
]


def installed_backends():
    return [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]


def _python(args, env=None, capture=True):
    """Run `python -m ...` in a fresh process; returns (wall seconds, stdout)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        check=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return time.perf_counter() - start, done.stdout


def fit_pairs(experiment, reps):
    """In this process: plain NumPy fit against the harness's fast path, alternating; JSON rows."""
    from harness import registry
    from harness.training import per_run

    spec = registry.discover()[experiment]
    per_run.run(spec, 0, fast=True)  # warm-up: the first fit of a process pays one-time costs
    rows = []
    sides = [("plain", False, True), ("fast", True, True), ("fast_no_health", True, False)]
    for rep in range(reps):
        for side, fast, health in sides if rep % 2 == 0 else sides[::-1]:
            row, _ = per_run.run(spec, rep, fast=fast, health=health)
            rows.append(
                {
                    "side": side,
                    "seed": rep,
                    "fit_seconds": row["fit_seconds"],
                    "test_accuracy": row["test_accuracy"],
                }
            )
    return rows


def _fit_sides(backend, experiment, reps):
    _, out = _python(["-m", "harness.bench", "_fit", experiment, str(reps)], env={"KERAS_BACKEND": backend})
    rows = json.loads(out.strip().splitlines()[-1])
    sides = {name: [r for r in rows if r["side"] == name] for name in ("plain", "fast", "fast_no_health")}
    seconds = {k: statistics.median(r["fit_seconds"] for r in v) for k, v in sides.items()}
    accuracy = {k: statistics.mean(r["test_accuracy"] for r in v) for k, v in sides.items()}
    return seconds, accuracy


def measure_fit(experiment, reps, backends):
    """Harness fit time on each backend against plain Keras as the article runs it (NumPy
    arrays into fit, on the default TensorFlow backend); the backends run one after another."""
    sides = {b: _fit_sides(b, experiment, reps) for b in backends}
    plain, plain_accuracy = sides["tensorflow"][0]["plain"], sides["tensorflow"][1]["plain"]
    rows = []
    for backend, (seconds, accuracy) in sides.items():
        rows.append(
            {
                "measure": "fit",
                "backend": backend,
                "experiment": experiment,
                "reference": "plain Keras on tensorflow, NumPy inputs",
                "reference_value": plain,
                "harness_value": seconds["fast"],
                "ratio": seconds["fast"] / plain,
                "unit": "s per fit (median)",
                "note": f"test accuracy over {reps} seeds: plain {plain_accuracy:.4f}, "
                f"harness {accuracy['fast']:.4f}; "
                f"plain NumPy fit on {backend}: {seconds['plain']:.2f} s",
            }
        )
        rows.append(
            {
                "measure": "health_cost",
                "backend": backend,
                "experiment": experiment,
                "reference": "harness fit without health recording",
                "reference_value": seconds["fast_no_health"],
                "harness_value": seconds["fast"],
                "ratio": seconds["fast"] / seconds["fast_no_health"],
                "unit": "s per fit (median); ratio = with / without",
                "note": "per-epoch weight norms and update ratios of every layer",
            }
        )
    return rows


def measure_cold_run(reps):
    """`python -m harness run iris_baseline` (5 seeds, cold) against the article's one-run script."""
    article, harness_run = [], []
    for _ in range(reps):
        article.append(_python(["-m", "harness.article"])[0])
        with tempfile.TemporaryDirectory() as tmp:
            harness_run.append(
                _python(["-m", "harness", "run", "iris_baseline", "--engine", "per-run", "--results", tmp])[0]
            )
    a, h = statistics.median(article), statistics.median(harness_run)
    return {
        "measure": "cold_run",
        "backend": "tensorflow",
        "experiment": "iris_baseline",
        "reference": "article script, 1 run",
        "reference_value": a,
        "harness_value": h,
        "ratio": h / a,
        "unit": "s wall (median)",
        "note": "harness: 5 seeds, default --jobs",
    }


def measure_sweep(runs, epochs):
    """The same sweep serial (one process, single- and multi-threaded) and with --jobs 2."""
    times = {}
    configs = {
        "serial, 1 thread": (["--jobs", "1"], {}),
        "serial, 2 threads": (
            ["--jobs", "1"],
            {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2", "OMP_NUM_THREADS": "2"},
        ),
        "parallel, --jobs 2": (["--jobs", "2"], {}),
    }
    for label, (flags, env) in configs.items():
        with tempfile.TemporaryDirectory() as tmp:
            args = [
                "-m",
                "harness",
                "run",
                "iris_baseline",
                "--seeds",
                str(runs),
                "--set",
                f"fit.epochs={epochs}",
                "--results",
                tmp,
                "--engine",
                "per-run",
                *flags,
            ]
            times[label] = _python(args, env=env)[0]
    serial = min(v for k, v in times.items() if k.startswith("serial"))
    note = "; ".join(f"{k} {v:.1f} s" for k, v in times.items())
    return {
        "measure": "sweep_speedup",
        "backend": "tensorflow",
        "experiment": f"iris_baseline x{runs}, {epochs} epochs",
        "reference": "best serial",
        "reference_value": serial,
        "harness_value": times["parallel, --jobs 2"],
        "ratio": serial / times["parallel, --jobs 2"],
        "unit": "s wall; ratio = speed-up",
        "note": note,
    }


def measure_memory(runs, epochs):
    """Peak resident memory of each worker over a sweep, against its first run."""
    import pandas as pd

    rows = []
    for label, flags in (
        ("--jobs 2 (workers replaced)", ["--jobs", "2"]),
        ("--jobs 1 (one process)", ["--jobs", "1"]),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            _python(
                [
                    "-m",
                    "harness",
                    "run",
                    "iris_baseline",
                    "--seeds",
                    str(runs),
                    "--set",
                    f"fit.epochs={epochs}",
                    "--results",
                    tmp,
                    "--engine",
                    "per-run",
                    *flags,
                ]
            )
            name = f"iris_baseline[fit.epochs={epochs}]"
            runs_csv = pd.read_csv(Path(tmp) / name / "runs.csv").sort_values("finished_at", kind="stable")
        growth = runs_csv.groupby("pid")["peak_rss_mb"].agg(lambda s: s.max() - s.iloc[0])
        first = runs_csv.groupby("pid")["peak_rss_mb"].first()
        rows.append((label, float(growth.max()), float(first.max()), runs_csv["pid"].nunique()))
    (label, growth, first, processes), (_, serial_growth, _, _) = rows
    return {
        "measure": "memory_growth_mb",
        "backend": "tensorflow",
        "experiment": f"iris_baseline x{runs}, {epochs} epochs",
        "reference": "first run's peak RSS",
        "reference_value": first,
        "harness_value": first + growth,
        "ratio": growth,
        "unit": "MB; ratio = growth",
        "note": f"{label}: {processes} processes; "
        f"one process without replacement grows {serial_growth:.0f} MB",
    }


def measure_list(reps):
    times = sorted(_python(["-m", "harness", "list"])[0] for _ in range(reps))
    return {
        "measure": "list_seconds",
        "backend": "",
        "experiment": "",
        "reference": "target",
        "reference_value": TARGETS[("list_seconds", None, None)],
        "harness_value": statistics.median(times),
        "ratio": statistics.median(times),
        "unit": "s wall (median)",
        "note": f"{reps} runs",
    }


# -- the vectorized engine ------------------------------------------------------------------


def _tree_rss_mb(pid):
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total / 1024


def _harness(args, env=None, peak=False, cwd=None):
    """`python -m harness ARGS` in a fresh process (run in `cwd`, which then provides the package):
    (wall seconds, peak MB over its process tree or None)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
    )
    top = 0.0
    while process.poll() is None:
        if peak:
            top = max(top, _tree_rss_mb(process.pid))
        time.sleep(0.2 if peak else 0.02)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"python -m harness {' '.join(args)} exited {process.returncode}")
    return seconds, (top if peak else None)


def _row(measure, experiment, reference, reference_value, value, ratio, unit, note):
    return {
        "measure": measure,
        "backend": "jax",
        "experiment": experiment,
        "reference": reference,
        "reference_value": reference_value,
        "harness_value": value,
        "ratio": ratio,
        "unit": unit,
        "note": note,
    }


def measure_engine_runs(reps):
    """Cold `run iris_baseline` (5 seeds, the vectorized engine) with an empty and with a warm
    compile cache, against the article's script, interleaved."""
    article, cold, warm = [], [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            env = {"HARNESS_CACHE": str(Path(tmp) / "cache")}
            article.append(_python(["-m", "harness.article"])[0])
            cold.append(_harness(["run", "iris_baseline", "--results", str(Path(tmp) / "a")], env)[0])
            warm.append(_harness(["run", "iris_baseline", "--results", str(Path(tmp) / "b")], env)[0])
    a, c, w = (statistics.median(v) for v in (article, cold, warm))
    note = "article: 1 run on tensorflow; harness: 5 seeds as one JAX program, default --jobs"
    return [
        _row(
            "engine_cold_run",
            "iris_baseline",
            "article script",
            a,
            c,
            c / a,
            "s wall (median)",
            note + ", empty compile cache",
        ),
        _row(
            "engine_warm_run",
            "iris_baseline",
            "article script",
            a,
            w,
            w / a,
            "s wall (median)",
            note + ", warm compile cache",
        ),
    ]


TUNER_SCRIPT = """
import sys, tempfile
from harness import data
from harness.training.backend import keras
import keras_tuner as kt
from harness.spec import DEFAULTS
split = data.load_split({**DEFAULTS["data"], "validation_size": 0.2})
def build(hp):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    rate = hp.Choice("learning_rate", RATES)
    model.compile(
        optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model
with tempfile.TemporaryDirectory() as tmp:
    tuner = kt.GridSearch(
        build, objective="val_loss", executions_per_trial=5, directory=tmp, project_name="iris"
    )
    tuner.search(split.x_train, split.y_train, epochs=100, batch_size=10,
                 validation_data=(split.x_val, split.y_val), verbose=0)
"""


def measure_tuner():
    """Keras Tuner's GridSearch (5 Adam rates x 5 executions, 100 epochs, batch 10, 20% validation)
    against the same grid as a harness search, whole commands."""
    grid = {
        "name": "bench_tuner_grid",
        "data": {"dataset": "iris", "test_size": 0.2, "validation_size": 0.2},
        "model": IRIS_NET,
        "compile": {
            "optimizer": {"class_name": "adam", "learning_rate": 0.001},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 100, "batch_size": 10},
        "seeds": 5,
        "search": {"grid": {"compile.optimizer.learning_rate": TUNER_RATES}},
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "exps").mkdir()
        (Path(tmp) / "exps" / "bench_grid.py").write_text(f"EXPERIMENTS = [{grid!r}]\n")
        harness_seconds = _harness(
            [
                "--experiments",
                str(Path(tmp) / "exps"),
                "run",
                "bench_tuner_grid",
                "--results",
                str(Path(tmp) / "r"),
            ],
            {"HARNESS_CACHE": str(Path(tmp) / "cache")},
        )[0]
    if not importlib.util.find_spec("keras_tuner"):
        return [
            _row(
                "tuner_grid",
                "iris, 5 rates x 5 seeds",
                "Keras Tuner GridSearch",
                float("nan"),
                harness_seconds,
                float("nan"),
                "s wall",
                "keras-tuner is not installed (pip install -e '.[bench]')",
            )
        ]
    script = TUNER_SCRIPT.replace("RATES", repr(TUNER_RATES))
    tuner_seconds = _python(["-c", script])[0]
    return [
        _row(
            "tuner_grid",
            "iris, 5 rates x 5 seeds",
            "Keras Tuner GridSearch",
            tuner_seconds,
            harness_seconds,
            harness_seconds / tuner_seconds,
            "s wall",
            "whole commands; the harness with an empty compile cache",
        )
    ]


@contextlib.contextmanager
def exported(ref):
    """The harness at git commit `ref`, exported (`git archive`) into a temporary folder: yields
    (folder, None), or (None, why not) when git or the commit is not available here."""
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", ref], capture_output=True)
    except OSError as exc:
        yield None, f"git is not available ({exc.strerror})"
        return
    if done.returncode:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        yield None, f"git archive {ref} in {root} failed: {said[-1] if said else done.returncode}"
        return
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp), None


def _engine_command(args, tree=None):
    """`python -m harness ARGS` cold, with an empty compile cache, from this harness or (`tree`) an
    exported one: (seconds, what the engine reports: programs compiled, compile, trace and train
    seconds summed over its groups; an engine that does not report them gives NaN)."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "engine.jsonl"
        env = {"HARNESS_CACHE": str(Path(tmp) / "cache"), "HARNESS_ENGINE_STATS": str(stats)}
        if tree is not None:  # run in the tree, so that `-m harness` imports its package
            env["PYTHONPATH"] = str(tree)
        seconds = _harness([*args, "--results", str(Path(tmp) / "r")], env, cwd=tree)[0]
        groups = [json.loads(line) for line in stats.read_text().splitlines()] if stats.exists() else None
    if groups is None:
        return seconds, {key: math.nan for key in ("programs", "compile", "trace", "train")}
    cost = {key: sum(g[f"{key}_s"] for g in groups) for key in ("compile", "trace", "train")}
    return seconds, {"programs": sum(g["compiled"] for g in groups), **cost}


def _medians(reports):
    return {key: statistics.median(r[key] for r in reports) for key in reports[0]}


def _spent(report):
    if math.isnan(report["programs"]):
        return "the engine does not report its programs"
    return (
        f"{report['programs']:g} programs compiled, compile {report['compile']:.1f} s, "
        f"trace {report['trace']:.1f} s, train {report['train']:.1f} s"
    )


def _load():
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _sides(args, sides, reps):
    """Each side of `sides` ({name: (extra args, exported tree or None)}) `reps` times, interleaved
    (the order reversed every other repetition): ({side: [seconds]}, {side: median report}, notes with
    the load average before and after)."""
    times, reports, load = {side: [] for side in sides}, {side: [] for side in sides}, [_load()]
    names = list(sides)
    for rep in range(reps):
        for side in names if rep % 2 == 0 else names[::-1]:
            extra, tree = sides[side]
            seconds, report = _engine_command([*args, *extra], tree)
            times[side].append(seconds)
            reports[side].append(report)
    load.append(_load())
    return times, {side: _medians(r) for side, r in reports.items()}, ", then ".join(load)


def _versus_before(measure, experiment, times, reports, before, note):
    """The row of this engine against the engine at `before` = (ref, exported tree or None, why not)."""
    ref, tree, why = before
    now = statistics.median(times["now"])
    if tree is None:
        reference = f"engine at {ref}: not measured ({why})"
        return _row(measure, experiment, reference, math.nan, now, math.nan, "s wall", note)
    then = statistics.median(times["before"])
    said = f"before: {', '.join(f'{t:.1f}' for t in times['before'])} s ({_spent(reports['before'])}); "
    said += f"now: {', '.join(f'{t:.1f}' for t in times['now'])} s; "
    reference = f"engine at {ref}, measured in this run (interleaved)"
    return _row(measure, experiment, reference, then, now, now / then, "s wall", said + note)


def measure_suite(reps, before):
    """The overfitting suite (8 experiments x 20 seeds), cold, empty compile cache: this engine against
    `--engine per-run` and against the engine at `before` (ref, exported tree, why not), interleaved."""
    sides = {"now": (["--engine", "vectorized"], None), "per-run": (["--engine", "per-run"], None)}
    if before[1] is not None:
        sides["before"] = ([], before[1])  # its own default engine: vectorized
    times, reports, load = _sides(["run", "--suite", "overfitting"], sides, reps)
    v, p, spent = statistics.median(times["now"]), statistics.median(times["per-run"]), reports["now"]
    note = f"{_spent(spent)}; {reps} runs each, medians; {load}"
    experiment = "overfitting suite, 8 x 20 seeds"
    return [
        _row("suite_vs_per_run", experiment, "--engine per-run", p, v, v / p, "s wall", note),
        _versus_before("suite_vs_before", experiment, times, reports, before, note),
        _row(
            "suite_programs", experiment, "target", 2, spent["programs"], spent["programs"], "programs", note
        ),
    ]


def measure_doctor(reps, before):
    """`doctor overfit_baseline` cold with an empty compile cache, against the engine at `before`
    (ref, exported tree, why not), interleaved."""
    sides = {"now": ([], None)}
    if before[1] is not None:
        sides["before"] = ([], before[1])
    times, reports, load = _sides(["doctor", "overfit_baseline"], sides, reps)
    d = statistics.median(times["now"])
    note = f"{_spent(reports['now'])}; {reps} runs each, medians; {load}"
    return [
        _row("doctor_cold", "doctor overfit_baseline", "target", 30.0, d, d, "s wall", note),
        _versus_before("doctor_vs_before", "doctor overfit_baseline", times, reports, before, note),
    ]


def measure_seeds():
    """100 seeds of iris_baseline against 5, both with a warm compile cache."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"HARNESS_CACHE": str(Path(tmp) / "cache")}
        times = {}
        for seeds in ("5", "100", "5", "100"):  # the first pair warms the cache
            args = ["run", "iris_baseline", "--seeds", seeds, "--force", "--results", str(Path(tmp) / seeds)]
            times[seeds] = _harness(args, env)[0]
    return [
        _row(
            "seeds_100_vs_5",
            "iris_baseline",
            "5 seeds",
            times["5"],
            times["100"],
            times["100"] / times["5"],
            "s wall; ratio = 100 seeds / 5 seeds",
            "warm compile cache, default --jobs",
        )
    ]


def measure_sweep_memory(runs=500):
    """Peak resident memory over all processes of a 500-run sweep (iris_baseline seeds)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["run", "iris_baseline", "--seeds", str(runs), "--results", str(Path(tmp) / "r")]
        seconds, peak = _harness(args, {"HARNESS_CACHE": str(Path(tmp) / "cache")}, peak=True)
    return [
        _row(
            "sweep_500_peak_mb",
            f"iris_baseline x{runs}",
            "target",
            TARGETS[("sweep_500_peak_mb", None, None)],
            peak,
            peak,
            "MB; ratio = peak MB",
            f"sum of resident memory over the process tree, sampled; {seconds:.0f} s",
        )
    ]


def engine_steps(quick, before):
    """The engine's measurements; `before` = (ref, exported tree or None, why not): the engine the
    issue-20 rows compare with."""
    reps = 1 if quick else 3
    return [
        ("engine: cold run", lambda: measure_engine_runs(reps)),
        ("engine: 100 seeds vs 5", measure_seeds),
        ("engine: 500-run sweep memory", measure_sweep_memory),
        ("engine: overfitting suite", lambda: measure_suite(reps, before)),
        ("engine: doctor", lambda: measure_doctor(reps, before)),
        ("engine: Keras Tuner grid", measure_tuner),
    ]


def verdict(row):
    key = (
        row["measure"],
        row["backend"] if row["measure"] == "fit" else None,
        row["experiment"] if row["measure"] in ("fit", "cold_run") else None,
    )
    target = TARGETS.get(key)
    if target is None:
        return "", ""
    if isinstance(row["ratio"], float) and math.isnan(row["ratio"]):
        return target, ""  # not measured
    met = row["ratio"] >= target if row["measure"] == "sweep_speedup" else row["ratio"] <= target
    return target, "yes" if met else "NO"


def main(args):
    """Run every measurement; print the table and write <results>/bench.csv."""
    import pandas as pd

    from harness.results import atomic_write

    quick = args.quick
    reps = 3 if quick else args.reps
    steps = [("list", lambda: [measure_list(5)])]
    for experiment in ["iris_baseline", *([args.larger] if args.larger else [])]:
        steps.append((f"fit {experiment}", lambda e=experiment: measure_fit(e, reps, installed_backends())))
    steps.append(("cold run", lambda: [measure_cold_run(1 if quick else 3)]))
    steps.append(("sweep", lambda: [measure_sweep(10 if quick else 40, 100)]))
    steps.append(("memory", lambda: [measure_memory(20 if quick else 100, 10)]))
    if getattr(args, "engine_only", False):
        steps = []
    ref = getattr(args, "before", None) or BEFORE_REF
    rows = []
    with exported(ref) as (tree, why):
        for label, step in steps + engine_steps(quick, (ref, tree, why)):
            print(f"measuring {label}...", file=sys.stderr, flush=True)
            measured = step()
            for row in measured:  # as it comes, so a long benchmark shows its numbers early
                print(
                    f"  {row['measure']}: {row['harness_value']:.3f} vs {row['reference_value']:.3f}"
                    f" -> {row['ratio']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )
            rows += measured
    for row in rows:
        row["target"], row["met"] = verdict(row)
    table = pd.DataFrame(rows)
    atomic_write(Path(args.results) / "bench.csv", table.to_csv(index=False))
    shown = table[
        [
            "measure",
            "backend",
            "experiment",
            "reference_value",
            "harness_value",
            "ratio",
            "target",
            "met",
            "note",
        ]
    ]
    with pd.option_context(
        "display.max_colwidth", 90, "display.width", 250, "display.float_format", "{:.3f}".format
    ):
        print(shown.to_string(index=False))
    print(f"\nwritten: {Path(args.results) / 'bench.csv'}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_fit"]:
        from harness.training import backend  # noqa: F401  (quiet Keras before anything prints)

        print(json.dumps(fit_pairs(sys.argv[2], int(sys.argv[3]))))
