"""harness.api, used as a notebook would: experiments as dicts, DataFrames back, mistakes as exceptions."""

import copy
import json
import math
import pickle
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import BAD_SPECS, KERAS_BAD_SPECS, PYTHON, ROOT, TINY, changed

import harness
from harness import cli
from harness.errors import HarnessError, SpecError

WIDE = {"name": "nb_wide", "base": "nb_tiny", "overrides": {"model.0.units": 16}}


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """Two experiments run from dicts, as in a notebook: a tiny net and a variant of it (2 seeds,
    2 epochs), trained in this process (per-run: its Keras is TensorFlow's; the engine trains scripts
    below)."""
    root = tmp_path_factory.mktemp("api") / "results"
    tiny = {**copy.deepcopy(TINY), "name": "nb_tiny"}
    here = {"results": str(root), "jobs": 1, "engine": "per-run", "quiet": True}
    first = harness.run(tiny, seeds=2, **here)
    # the variant names its base: an experiment the registry knows, or one given in the same call
    both = harness.run([tiny, WIDE], seeds=2, **here)
    return {"root": str(root), "first": first, "both": both}


def test_run_from_a_dict_returns_its_runs(notebook):
    runs = notebook["first"]
    assert list(runs["experiment"]) == ["nb_tiny", "nb_tiny"]
    assert list(runs["seed"]) == [0, 1]
    assert set(runs["status"]) == {"ok"}
    assert runs["test_accuracy"].between(0, 1).all()
    assert (runs["epochs_run"] == 2).all()
    stored = pd.read_csv(f"{notebook['root']}/nb_tiny/runs.csv", dtype={"spec_hash": str})
    assert list(runs["finished_at"]) == list(stored["finished_at"])  # the stored rows, not copies
    # running again reuses the stored seeds (same spec hash): the very same rows
    assert list(notebook["both"].query("experiment == 'nb_tiny'")["finished_at"]) == list(runs["finished_at"])
    assert list(notebook["both"]["experiment"]) == ["nb_tiny", "nb_tiny", "nb_wide", "nb_wide"]


def test_compare_two_variants_returns_tables_and_prints_nothing(notebook, capsys):
    result = harness.compare(["nb_tiny", "nb_wide"], results=notebook["root"])
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "nb_tiny" not in printed.err
    assert result.baseline == "nb_tiny"  # the experiment the other is a variant of
    table = result.table
    assert list(table["experiment"]) == ["nb_tiny", "nb_wide"]
    runs = pd.read_csv(f"{notebook['root']}/nb_wide/runs.csv")
    assert table.set_index("experiment").loc["nb_wide", "test_accuracy_mean"] == pytest.approx(
        runs["test_accuracy"].mean()
    )
    assert list(result.summary["experiment"]) == ["nb_tiny", "nb_wide"]
    assert {"test_accuracy_mean", "test_accuracy_ci95_low", "test_accuracy_ci95_high"} <= set(result.summary)
    diffs = result.differences
    assert list(diffs["metric"]) == ["test_accuracy", "test_loss", "train_accuracy", "gap_test_loss"]
    assert set(diffs["experiment"]) == {"nb_wide"}
    assert set(diffs["verdict"]) <= {"better", "worse", "no evidence"}
    row = diffs.set_index("metric").loc["test_accuracy"]
    assert row["diff"] == pytest.approx(table.set_index("experiment").loc["nb_wide", "test_accuracy_diff"])
    # one variant is a family of one: Holm leaves its p-value as it is; a fixed split has one scope
    assert row["p_adjusted"] == pytest.approx(row["p_value"])
    assert row["scope"] == "this split; seeds vary initialisation and order"
    assert math.isnan(row["new_p_value"])
    assert row["verdict_words"] == f"{row['verdict']} on this split"
    assert math.isnan(row["runs_needed"]) == (
        row["verdict"] != "no evidence"
    )  # only an open question has one
    # the CLI's own tables from the same numbers, and nothing written unless asked
    assert "nb_wide" in result.text() and "test acc [95% CI]" in result.text()
    assert not Path(notebook["root"], "comparisons", "nb_tiny+nb_wide.csv").exists()
    assert "<table" in result._repr_html_()


def test_load_returns_runs_and_history(notebook):
    loaded = harness.load("nb_wide", results=notebook["root"])
    assert loaded.spec["base"] == "nb_tiny"
    assert loaded.spec["model"][0]["units"] == 16
    assert list(loaded.runs["seed"]) == [0, 1]
    assert sorted(set(zip(loaded.history["seed"], loaded.history["epoch"]))) == [
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
    ]
    assert {"loss", "accuracy"} <= set(loaded.history.columns)
    assert set(loaded.runs["spec_hash"]) == {loaded.spec_hash}
    with pytest.raises(
        HarnessError, match=r"experiment 'nothing_here' has no stored runs .*python -m harness run"
    ):
        harness.load("nothing_here", results=notebook["root"])


def test_overrides_and_seeds_name_and_pick_like_the_cli():
    from harness.api import specs_for

    specs = specs_for({**TINY, "name": "nb_x"}, seeds=[3, 5], overrides={"fit.epochs": 4})
    assert [s.name for s in specs] == ["nb_x[fit.epochs=4]"]
    assert specs[0].seeds == (3, 5) and specs[0].fit["epochs"] == 4
    with pytest.raises(HarnessError, match=r"seeds=0: must be a positive number of seeds"):
        specs_for({**TINY, "name": "nb_x"}, seeds=0)
    with pytest.raises(HarnessError, match=r"a name or a spec dict, got int"):
        specs_for(3)
    # what goes to a worker process: plain data that comes back as the same spec
    variant = specs_for(
        [{**TINY, "name": "nb_x"}, {"name": "nb_y", "base": "nb_x", "overrides": {"fit.epochs": 3}}]
    )[1]
    assert pickle.loads(pickle.dumps(variant)) == variant and variant.base == "nb_x"
    # a dict may repeat a listed experiment, not redefine it under its name
    listed = harness.api.registry.discover()["iris_baseline"].to_dict()
    assert [s.hash for s in specs_for(listed)] == [harness.api.registry.discover()["iris_baseline"].hash]
    with pytest.raises(
        HarnessError,
        match=(
            r"the dict 'iris_baseline' differs from the experiment of that name in "
            r".*iris.py; give it another name"
        ),
    ):
        specs_for({**TINY, "name": "iris_baseline"})


def _cli_error(capsys, write_experiments, tmp_path, raw, engine="auto"):
    """What `python -m harness run NAME` prints for the experiment dict `raw` written in a module."""
    directory = write_experiments([raw])
    argv = ["--experiments", str(directory), "run", raw["name"], "--results", str(tmp_path / "r")]
    code = cli.main([*argv, "-j", "1", "--engine", engine])
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, lines
    return lines[0], str(directory / "exps.py")


def _same_as_cli(exc, cli_line, module):
    """The exception's text is the CLI's line, but for where the spec was written (a module there,
    a dict here)."""
    assert isinstance(exc, SpecError)
    assert exc.source is None
    assert cli_line == f"error: {SpecError(exc.experiment, exc.path, exc.message, module)}"


@pytest.mark.parametrize("case", BAD_SPECS[::4] + [BAD_SPECS[-1]], ids=lambda c: c[0])
def test_a_bad_dict_raises_what_the_cli_prints(case, capsys, write_experiments, tmp_path):
    _, changes, path, _ = case
    raw = changed(TINY, changes)
    cli_line, module = _cli_error(capsys, write_experiments, tmp_path, raw)
    with pytest.raises(SpecError) as caught:
        harness.run(raw, results=str(tmp_path / "r"), jobs=1, quiet=True)
    _same_as_cli(caught.value, cli_line, module)
    assert caught.value.path == path
    assert not (tmp_path / "r").exists()  # nothing ran


@pytest.mark.parametrize(
    "case, engine",
    [
        (
            KERAS_BAD_SPECS[0],
            "auto",
        ),  # the engine's check: in a worker (this process's Keras is TensorFlow's)
        (KERAS_BAD_SPECS[1], "per-run"),  # checked in this process
    ],
    ids=lambda c: c if isinstance(c, str) else c[0],
)
def test_a_dict_keras_rejects_raises_what_the_cli_prints(
    case, engine, capsys, write_experiments, tmp_path, keras_ready
):
    _, changes, path, _ = case
    raw = changed(TINY, changes)
    cli_line, module = _cli_error(capsys, write_experiments, tmp_path, raw, engine)
    with pytest.raises(SpecError) as caught:
        harness.run(raw, results=str(tmp_path / "r"), jobs=1, engine=engine, quiet=True)
    _same_as_cli(caught.value, cli_line, module)
    assert caught.value.path == path


def test_a_variant_of_an_unknown_base_raises_what_the_cli_prints(capsys, write_experiments, tmp_path):
    raw = {"name": "nb_v", "base": "iris_baselin", "overrides": {"fit.epochs": 2}}
    cli_line, module = _cli_error(capsys, write_experiments, tmp_path, raw)
    with pytest.raises(
        SpecError, match=r"no experiment named 'iris_baselin'. Did you mean 'iris_baseline'\?"
    ) as caught:
        harness.run(raw, results=str(tmp_path / "r"))
    _same_as_cli(caught.value, cli_line, module)


def test_importing_harness_stays_light_and_its_functions_are_the_apis(harness_env):
    code = (
        "import sys, json, harness\n"
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'jax', 'mlflow', 'pandas') if m in sys.modules)\n"
        "from harness import api, comparison, compare\n"
        "print(json.dumps([heavy, compare is api.compare, harness.write_report is api.write_report,\n"
        "    harness.run is api.run, harness.load is api.load, callable(comparison.compute),\n"
        "    harness.__version__]))\n"
    )
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=harness_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[], True, True, True, True, True, harness.__version__]


# -- a script without a main guard, as people write them -----------------------------------------------

SCRIPT = """import json, os
import harness

with open({marks!r}, "a") as marks:  # each process that runs this top level leaves its id
    marks.write(f"{{os.getpid()}}\\n")
runs = harness.run({spec!r}, seeds=3, results="results", quiet=True{options})
print(json.dumps({{"pid": os.getpid(), "pipelines": sorted(set(runs["pipeline"])),
                  "pids": sorted(set(map(int, runs["pid"]))), "status": sorted(set(runs["status"]))}}))
"""


@pytest.mark.parametrize(
    "how, engine",
    [
        ("file", "auto"),  # python experiment.py: the default engine, in the script's process
        ("pipe", "auto"),  # cat experiment.py | python -
        ("file", "per-run"),  # two worker processes
        pytest.param("pipe", "per-run", marks=pytest.mark.slow),
    ],
)
def test_a_script_without_a_main_guard_runs_and_returns(how, engine, tmp_path, harness_env):
    """harness.run at a script's top level: worker processes must not run that top level again
    (multiprocessing would re-import the script, or fail to find it when it is piped)."""
    marks = tmp_path / "marks.txt"
    options = "" if engine == "auto" else ', engine="per-run", jobs=2'
    text = SCRIPT.format(marks=str(marks), spec={**TINY, "name": "script_tiny"}, options=options)
    (tmp_path / "experiment.py").write_text(text)
    command = [PYTHON, "experiment.py"] if how == "file" else [PYTHON, "-"]
    done = subprocess.run(
        command,
        input=None if how == "file" else text,
        cwd=tmp_path,  # the user's folder: results/ goes there
        env=harness_env,
        capture_output=True,
        text=True,
        timeout=600,  # a guard: a script that re-imports itself hangs
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert marks.read_text().split() == [str(out["pid"])]  # the top level ran once, in the script's process
    assert out["status"] == ["ok"]
    if engine == "auto":  # the vectorized engine, in the script's process
        assert out["pipelines"] == ["jax.vmap group of 3"] and out["pids"] == [out["pid"]]
    else:
        assert not any(p.startswith("jax.vmap") for p in out["pipelines"]) and out["pid"] not in out["pids"]
    assert (tmp_path / "results" / "script_tiny" / "runs.csv").exists()


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"harness {harness.__version__}"


@pytest.mark.parametrize(
    "argv",
    [["-q", "run", "x"], ["run", "x", "-q"], ["--quiet", "report", "x"], ["export", "mlflow", "x", "-q"]],
)
def test_quiet_goes_before_or_after_the_command(argv):
    assert cli.parser().parse_args(argv).quiet is True
    assert cli.parser().parse_args([a for a in argv if a not in ("-q", "--quiet")]).quiet is False
