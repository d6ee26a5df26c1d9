"""harness.ray_executor: a sweep run as Ray tasks on a local two-CPU Ray gives the same rows and files as local runs.

Iris, 3 epochs, 2 experiments x 2 seeds; the Ray side runs through `python -m harness run --executor ray`.
"""

import copy
import subprocess

import pandas as pd
import pytest
from conftest import PYTHON, ROOT

from harness import executor, registry

ray = pytest.importorskip("ray")  # only a guard: the test command installs the ray extra

SAME = [
    "experiment",
    "seed",
    "spec_hash",
    "status",
    "epochs_run",
    "best_epoch",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "params",
    "backend",
    "keras_version",
]


def test_ray_runs_match_local_runs(tiny_spec, write_experiments, tmp_path, harness_env):
    base = {
        **copy.deepcopy(tiny_spec),
        "name": "rayt",
        "seeds": [0, 1],
        "fit": {"epochs": 3, "batch_size": 16},
    }
    variant = {"name": "rayt_wide", "base": "rayt", "overrides": {"model.0.units": 8}}
    d = write_experiments([base, variant])
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"

    specs = registry.select(registry.load([d]), ["rayt*"])
    assert executor.run(specs, local_root, jobs=1) == []

    command = [
        PYTHON,
        "-m",
        "harness",
        "--experiments",
        str(d),
        "run",
        "rayt*",
        "--executor",
        "ray",
        "--jobs",
        "2",
        "--results",
        str(ray_root),
    ]
    env = {k: v for k, v in harness_env.items() if k != "RAY_ADDRESS"}  # a local Ray started on demand
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "4 runs to do" and lines[-1].startswith("4 runs in "), (
        done.stderr
    )  # the progress display, no Ray noise
    assert sum(" seed " in line and "test_accuracy" in line for line in lines) == 4 and len(lines) == 6, (
        done.stderr
    )
    assert "rayt_wide" in done.stdout and "mean ± std over seeds" in done.stdout

    for name in ("rayt", "rayt_wide"):
        local, remote = local_root / name, ray_root / name
        assert sorted(p.name for p in remote.iterdir()) == sorted(p.name for p in local.iterdir())
        assert (remote / "spec.json").read_text() == (local / "spec.json").read_text()
        a = (
            pd.read_csv(local / "runs.csv", dtype={"spec_hash": str})
            .sort_values("seed")
            .reset_index(drop=True)
        )
        b = (
            pd.read_csv(remote / "runs.csv", dtype={"spec_hash": str})
            .sort_values("seed")
            .reset_index(drop=True)
        )
        assert list(b.columns) == list(a.columns)
        pd.testing.assert_frame_equal(
            b[SAME], a[SAME], check_exact=True
        )  # seeded and single-threaded: bit-identical
        assert b["pid"].nunique() >= 1 and not set(b["pid"]) & set(a["pid"])
        ha = (
            pd.read_csv(local / "history.csv", dtype={"spec_hash": str})
            .sort_values(["seed", "epoch"])
            .reset_index(drop=True)
        )
        hb = (
            pd.read_csv(remote / "history.csv", dtype={"spec_hash": str})
            .sort_values(["seed", "epoch"])
            .reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(hb, ha, check_exact=True)

    again = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )  # resume: nothing to do
    assert again.returncode == 0 and again.stderr.startswith("0 runs to do (4 already stored, skipped)"), (
        again.stderr
    )
