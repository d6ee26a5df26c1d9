"""harness.bench: target verdicts, the engine before measured from a tree exported with git (or a
row that says why not), and the whole benchmark in its quick form (slow)."""

import math
import shutil

import pandas as pd
import pytest

from harness import bench, cli


def test_verdicts_against_targets():
    fit = {"measure": "fit", "backend": "tensorflow", "experiment": "iris_baseline", "ratio": 0.24}
    assert bench.verdict(fit) == (0.25, "yes")
    assert bench.verdict(dict(fit, ratio=0.26)) == (0.25, "NO")
    assert bench.verdict(dict(fit, experiment="overfit_baseline")) == (
        "",
        "",
    )  # no target for the larger experiment
    sweep = {"measure": "sweep_speedup", "backend": "tensorflow", "experiment": "x", "ratio": 1.7}
    assert bench.verdict(sweep) == (1.6, "yes") and bench.verdict(dict(sweep, ratio=1.5)) == (1.6, "NO")
    assert (
        bench.verdict({"measure": "memory_growth_mb", "backend": "", "experiment": "", "ratio": 51})[1]
        == "NO"
    )


@pytest.mark.slow
def test_quick_benchmark_writes_every_measure(tmp_path, capsys):
    assert cli.main(["bench", "--quick", "--larger", "", "--results", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "bench.csv")
    assert {"list_seconds", "fit", "health_cost", "cold_run", "sweep_speedup", "memory_growth_mb"} <= set(
        table["measure"]
    )
    assert (table["harness_value"] > 0).all()
    assert "met" in capsys.readouterr().out


def test_engine_rows_are_judged_against_the_issues_targets():
    targets = {
        "engine_cold_run": 0.5,
        "engine_warm_run": 0.35,
        "tuner_grid": 0.05,
        "seeds_100_vs_5": 1.5,
        "sweep_500_peak_mb": 1536.0,
        "suite_vs_per_run": 0.1,
        "suite_vs_before": 0.5,
        "suite_programs": 2,
        "doctor_cold": 30.0,
        "doctor_vs_before": 0.3,
    }
    for measure, target in targets.items():
        row = {"measure": measure, "backend": "jax", "experiment": "iris_baseline", "ratio": target * 0.9}
        assert bench.verdict(row) == (target, "yes")
        assert bench.verdict(dict(row, ratio=target * 1.1)) == (target, "NO")


def test_memory_is_summed_over_a_process_tree():
    import os

    assert 10 < bench._tree_rss_mb(os.getpid()) < 100_000


def test_an_unknown_commit_is_said_not_guessed():
    with bench.exported("no-such-ref-0123") as (tree, why):
        assert tree is None and "no-such-ref-0123" in why
    row = bench._versus_before(
        "suite_vs_before", "overfitting suite", {"now": [10.0]}, {}, ("no-such-ref-0123", None, why), "load"
    )
    assert math.isnan(row["reference_value"]) and math.isnan(row["ratio"])
    assert row["reference"].startswith("engine at no-such-ref-0123: not measured (")
    assert bench.verdict(row) == (0.5, "")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_commit_is_exported_as_a_tree_that_runs():
    with bench.exported("HEAD") as (tree, why):
        if tree is None and "not a git repository" in why:
            pytest.skip("not a git checkout")
        assert why is None and (tree / "harness" / "__init__.py").is_file()
        assert (tree / "experiments").is_dir()
    assert not tree.exists()  # removed afterwards
