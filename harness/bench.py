"""`python -m harness bench`: the speed and memory targets, measured side by side in one run.

Every comparison runs both sides in the same invocation, interleaved, and reports medians
and ratios, so a busy machine slows both alike. Each backend is measured in its own
subprocess (Keras picks its backend once per process). Writes results/bench.csv.
"""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
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
}


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
    from harness import registry, runner

    spec = registry.load()[experiment]
    runner.run_seed(spec, 0, fast=True)  # warm-up: the first fit of a process pays one-time costs
    rows = []
    sides = [("plain", False, True), ("fast", True, True), ("fast_no_health", True, False)]
    for rep in range(reps):
        for side, fast, health in sides if rep % 2 == 0 else sides[::-1]:
            row, _ = runner.run_seed(spec, rep, fast=fast, health=health)
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
                "note": f"test accuracy over {reps} seeds: plain {plain_accuracy:.4f}, harness {accuracy['fast']:.4f}; "
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
            harness_run.append(_python(["-m", "harness", "run", "iris_baseline", "--results", tmp])[0])
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
        "note": f"{label}: {processes} processes; one process without replacement grows {serial_growth:.0f} MB",
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


def verdict(row):
    key = (
        row["measure"],
        row["backend"] if row["measure"] == "fit" else None,
        row["experiment"] if row["measure"] in ("fit", "cold_run") else None,
    )
    target = TARGETS.get(key)
    if target is None:
        return "", ""
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
    rows = []
    for label, step in steps:
        print(f"measuring {label}...", file=sys.stderr, flush=True)
        rows += step()
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
        from harness import runner  # noqa: F401  (quiet Keras before anything prints)

        print(json.dumps(fit_pairs(sys.argv[2], int(sys.argv[3]))))
