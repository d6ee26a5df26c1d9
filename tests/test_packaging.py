"""The built wheel: it holds every module and the shipped experiments, and once installed into a fresh
venv `python -m harness run iris_baseline` works from an empty directory (slow: a build and a run).

The fresh venv gets the wheel alone (`--no-deps`); its dependencies (TensorFlow, JAX, ...) come from
the venv running the tests through a .pth file naming that venv's site-packages. Python does not read
the .pth files of a folder named that way, so the editable install of the checkout living there (an
`__editable__*.pth`) stays out: the harness imported is the wheel's, as asserted.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

# What `run iris_baseline` prints on the vectorized engine (README's "Two commands").
IRIS_TABLE_ROW = "iris_baseline     5 0.2858 ± 0.1592 0.9317 ± 0.0199 0.2280 ± 0.1518 0.9667 ± 0.0236"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds from a copy of the checkout (a build in the checkout would leave build/
    behind, whose stale modules a later build would pack)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("harness", "experiments"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("harness-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """(python, environment) of a fresh venv holding the wheel, its dependencies borrowed."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    borrowed = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(purelib) / "borrowed_dependencies.pth").write_text("".join(f"{p}\n" for p in borrowed))
    unset = ("PYTHONPATH", "HARNESS_EXPERIMENTS", "TF_CPP_MIN_LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return python, env


def test_the_wheel_holds_every_module_and_the_shipped_experiments(wheel):
    modules = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    package = {f"harness/{p.relative_to(ROOT / 'harness').as_posix()}" for p in ROOT.glob("harness/**/*.py")}
    shipped = {f"harness/experiments/{p.name}" for p in (ROOT / "experiments").glob("*.py")}
    assert "harness/training/scheduler.py" in package and "harness/experiments/_common.py" in shipped
    assert modules == package | shipped


def test_installed_wheel_lists_and_runs_iris_baseline_from_an_empty_directory(installed, tmp_path):
    python, env = installed
    where = subprocess.run(
        [str(python), "-c", "import harness; print(harness.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(python.parent.parent), where  # the wheel's, not the checkout's

    listed = subprocess.run(
        [str(python.parent / "harness"), "list"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    from_clone = subprocess.run(
        [sys.executable, "-m", "harness", "list"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert "iris_baseline" in listed.stdout and listed.stdout == from_clone.stdout

    done = subprocess.run(
        [str(python), "-m", "harness", "run", "iris_baseline"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert IRIS_TABLE_ROW in done.stdout.splitlines()
    assert "results: results/iris_baseline" in done.stdout
    assert "[5/5] iris_baseline seed 4  test_accuracy 0.9667" in done.stderr
    folder = tmp_path / "results" / "iris_baseline"
    runs = pd.read_csv(folder / "runs.csv")
    assert list(runs["seed"]) == [0, 1, 2, 3, 4] and set(runs["status"]) == {"ok"}
    assert set(runs["spec_hash"]) == {"b83ca0486460"}  # the shipped spec, unchanged by where it lives
    assert len(pd.read_csv(folder / "history.csv")) == 5 * 100 and (folder / "spec.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # nothing else written here
