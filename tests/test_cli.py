"""harness.cli: exit status 2 and one line on stderr for every user mistake; list/show stay light.

Most cases call harness.cli.main in this process; a few run `python -m harness` for real.
"""

import json
import subprocess

import pandas as pd
import pytest
from conftest import PYTHON, ROOT, own_lines, start_up_lines

from harness import cli

NO_KERAS = (
    "import sys\n"
    "from harness import cli\n"
    "rc = cli.main(sys.argv[1:])\n"
    "loaded = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
    "assert not loaded, f'imported {loaded}'\n"
    "sys.exit(rc)\n"
)


def harness(args, env, timeout=300):
    """`python -m harness ARGS` from the project directory: (status, stdout, stderr)."""
    done = subprocess.run(
        [PYTHON, "-m", "harness", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr


def assert_one_error_line(err, *fragments):
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def main_fails(capsys, argv, *fragments):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    assert_one_error_line(err, *fragments)
    return out, err


# -- every bad spec: status 2, one message, no traceback ------------------------------------


def test_bad_spec_exits_2_with_one_message(bad_spec, write_experiments, tmp_path, capsys, check_message):
    raw, path, fragments = bad_spec
    d = write_experiments([raw])
    _, err = main_fails(
        capsys, ["--experiments", d, "run", raw["name"], "--results", tmp_path / "res", "--jobs", "1"]
    )
    check_message(err, raw["name"], path, fragments)
    assert str(d / "exps.py") in err
    assert not (tmp_path / "res").exists()  # nothing ran, nothing was written


def test_keras_name_error_exits_2_with_one_message(
    keras_bad_spec, keras_ready, write_experiments, tmp_path, capsys, check_message
):
    raw, path, fragments = keras_bad_spec
    d = write_experiments([raw])
    argv = ["--experiments", d, "run", raw["name"], "--results", tmp_path / "res", "--jobs", "1"]
    _, err = main_fails(capsys, [*argv, "--engine", "per-run"])  # checked by this process's Keras
    check_message(err, raw["name"], path, fragments)
    assert not (tmp_path / "res" / raw["name"] / "runs.csv").exists()


def test_bad_spec_through_python_m_harness(
    write_experiments, tiny_spec, tmp_path, harness_env, check_message
):
    tiny_spec["fit"]["epochs"] = 0
    d = write_experiments([tiny_spec])
    status, out, err = harness(
        ["--experiments", d, "run", "tiny", "--results", tmp_path / "res"], harness_env
    )
    assert status == 2
    assert_one_error_line(err)
    check_message(err, "tiny", "fit.epochs", ["got 0", "must be a positive integer", str(d / "exps.py")])


def test_keras_name_error_through_python_m_harness(
    write_experiments, tiny_spec, tmp_path, harness_env, check_message
):
    """Two seeds and no --jobs: the Keras check happens in a worker process and comes back as text."""
    tiny_spec["model"][0]["activation"] = "rellu"
    tiny_spec["seeds"] = 2
    d = write_experiments([tiny_spec])
    status, out, err = harness(
        ["--experiments", d, "run", "tiny", "--results", tmp_path / "res"], harness_env
    )
    assert status == 2
    assert_one_error_line(err)  # nor any TensorFlow log line
    check_message(
        err, "tiny", "model.0.activation", ["'rellu' is not a Keras activation", "Did you mean 'relu'?"]
    )


def test_module_that_raises_through_python_m_harness(write_experiments, harness_env):
    d = write_experiments("raise ValueError('half-written module')\n", module="broken.py")
    status, out, err = harness(["--experiments", d, "list"], harness_env)
    assert status == 2
    assert_one_error_line(err, str(d / "broken.py"), "ValueError: half-written module")


# -- other user mistakes ------------------------------------------------------------------


def test_duplicate_names(write_experiments, tiny_spec, capsys):
    d = write_experiments([tiny_spec], module="a.py")
    write_experiments([tiny_spec], module="b.py")
    main_fails(
        capsys,
        ["--experiments", d, "list"],
        "two experiments are named 'tiny'",
        str(d / "a.py"),
        str(d / "b.py"),
    )


def test_unknown_base_and_cycle(write_experiments, tiny_spec, tmp_path, capsys):
    d = write_experiments([tiny_spec, {"name": "v", "base": "tiyn", "overrides": {}}])
    main_fails(
        capsys, ["--experiments", d, "show", "v"], "no experiment named 'tiyn'", "Did you mean 'tiny'?"
    )
    d2 = write_experiments(
        [{"name": "a", "base": "b"}, {"name": "b", "base": "a"}], directory=tmp_path / "cycle"
    )
    main_fails(capsys, ["--experiments", d2, "list"], "variants form a cycle")


def test_unknown_override_path_in_a_variant(write_experiments, tiny_spec, tmp_path, capsys, check_message):
    d = write_experiments([tiny_spec, {"name": "v", "base": "tiny", "overrides": {"model.0.unitz.x": 8}}])
    _, err = main_fails(
        capsys, ["--experiments", d, "run", "v", "--results", tmp_path / "res"], "unknown override path"
    )
    check_message(
        err, "v", "model.0.unitz.x", ["no field 'model.0.unitz'", "Did you mean 'units'?", str(d / "exps.py")]
    )


def test_unknown_experiment_name(write_experiments, tiny_spec, tmp_path, capsys):
    d = write_experiments([tiny_spec])
    main_fails(
        capsys,
        ["--experiments", d, "run", "tiyn", "--results", tmp_path / "res"],
        "no experiment matches 'tiyn'",
        "Did you mean 'tiny'?",
    )
    main_fails(capsys, ["--experiments", d, "show", "tiyn"], "no experiment matches 'tiyn'")
    main_fails(
        capsys, ["--experiments", d, "run", "--results", tmp_path / "res"], "name at least one experiment"
    )
    main_fails(
        capsys,
        ["--experiments", d, "run", "--suite", "tinny", "--results", tmp_path / "res"],
        "no experiment is tagged 'tinny'",
        "Did you mean 'tiny'?",
    )


def test_unknown_override_path_on_the_command_line(write_experiments, tiny_spec, tmp_path, capsys):
    d = write_experiments([tiny_spec])
    main_fails(
        capsys,
        ["--experiments", d, "run", "tiny", "--set", "fit.epochz=3", "--results", tmp_path / "res"],
        "fit.epochz: unknown override path",
        "Did you mean 'epochs'?",
    )
    main_fails(
        capsys,
        ["--experiments", d, "run", "tiny", "--set", "fit.epochs=0", "--results", tmp_path / "res"],
        "fit.epochs: got 0; must be a positive integer",
    )
    main_fails(
        capsys,
        ["--experiments", d, "run", "tiny", "--set", "fit.epochs", "--results", tmp_path / "res"],
        "expected PATH=VALUE",
    )
    main_fails(
        capsys,
        ["--experiments", d, "run", "tiny", "--seeds", "0", "--results", tmp_path / "res"],
        "--seeds 0",
    )
    assert not (tmp_path / "res").exists()


def test_missing_experiments_directory(tmp_path, capsys):
    main_fails(capsys, ["--experiments", tmp_path / "nowhere", "list"], "no such directory")


# -- where experiments come from ------------------------------------------------------------


def test_experiments_option_before_and_after_the_subcommand(write_experiments, tiny_spec, capsys):
    d = write_experiments([tiny_spec])
    for argv in (["--experiments", d, "list"], ["list", "--experiments", d]):
        assert cli.main([str(a) for a in argv]) == 0
        out, err = capsys.readouterr()
        assert "tiny" in out and "iris_baseline" in out, out
        assert own_lines(err) == []
    assert cli.main(["show", "tiny", "--experiments", str(d)]) == 0
    out, err = capsys.readouterr()
    assert '"name": "tiny"' in out and own_lines(err) == []
    assert cli.main(["list"]) == 0
    assert "tiny" not in capsys.readouterr().out


def test_experiments_option_after_run(write_experiments, tiny_spec, tmp_path, capsys):
    tiny_spec["fit"]["batch_size"] = 0
    d = write_experiments([tiny_spec])
    main_fails(
        capsys, ["run", "tiny", "--experiments", d, "--results", tmp_path / "res"], "fit.batch_size: got 0"
    )


def test_experiments_from_the_environment(write_experiments, tiny_spec, monkeypatch, capsys):
    d = write_experiments([tiny_spec])
    monkeypatch.setenv("HARNESS_EXPERIMENTS", str(d))
    assert cli.main(["list"]) == 0
    out, _ = capsys.readouterr()
    assert "tiny" in out and "iris_baseline" in out


def test_experiments_from_the_environment_through_python_m_harness(write_experiments, tiny_spec, harness_env):
    tiny_spec["data"]["dataset"] = "irsi"
    d = write_experiments([tiny_spec])
    status, out, err = harness(["list"], {**harness_env, "HARNESS_EXPERIMENTS": str(d)})
    assert status == 2
    assert_one_error_line(err, "data.dataset: got 'irsi'", "Did you mean 'iris'?")


# -- list and show ----------------------------------------------------------------------


def test_list_prints_a_table(write_experiments, tiny_spec, capsys):
    d = write_experiments(
        [tiny_spec, {"name": "tiny_wide", "base": "tiny", "overrides": {"model.0.units": 8}}]
    )
    assert cli.main(["--experiments", str(d), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "dataset", "tags", "description"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert {"iris_baseline", "tiny", "tiny_wide"} <= set(rows)
    assert "iris" in rows["tiny"] and "a tiny iris net for tests" in rows["tiny"]


def test_show_prints_the_resolved_spec(write_experiments, tiny_spec, capsys):
    import json

    from harness import registry

    d = write_experiments(
        [tiny_spec, {"name": "tiny_wide", "base": "tiny", "overrides": {"model.0.units": 8}}]
    )
    assert cli.main(["--experiments", str(d), "show", "tiny_wide"]) == 0
    out = capsys.readouterr().out
    spec = registry.discover([d])["tiny_wide"]
    assert json.loads(out[: out.index("\nspec hash:")]) == spec.to_dict()
    assert f"spec hash: {spec.hash}" in out
    assert "variant of tiny, overriding: model.0.units" in out
    assert "units=8, activation=relu" in out


@pytest.mark.parametrize("argv", [["list"], ["show", "tiny_wide"]], ids=["list", "show"])
def test_list_and_show_do_not_import_keras(argv, write_experiments, tiny_spec, harness_env):
    d = write_experiments(
        [tiny_spec, {"name": "tiny_wide", "base": "tiny", "overrides": {"model.0.units": 8}}]
    )
    done = subprocess.run(
        [PYTHON, "-c", NO_KERAS, "--experiments", str(d), *argv],
        cwd=ROOT,
        env=harness_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "tiny" in done.stdout and own_lines(done.stderr) == []


def test_python_m_harness_list_does_not_import_tensorflow(harness_env):
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "harness", "list"],
        cwd=ROOT,
        env=harness_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "iris_baseline" in done.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "harness" in imported
    assert not imported & {"tensorflow", "keras", "jax", "torch"}


def test_show_keras_prints_the_summary_quietly(write_experiments, tiny_spec, harness_env):
    d = write_experiments([tiny_spec])
    status, out, err = harness(["--experiments", d, "show", "tiny", "--keras"], harness_env)
    assert status == 0, err
    assert "Total params: 35" in out
    assert own_lines(err) == [] and start_up_lines(err) == []  # silenced, as for `run`


# -- a tiny successful run ------------------------------------------------------------------


def test_run_prints_mean_and_std_and_writes_results(
    write_experiments, tiny_spec, tmp_path, capsys, keras_ready
):
    d = write_experiments([tiny_spec])
    res = tmp_path / "res"
    argv = [
        "--experiments",
        d,
        "run",
        "tiny",
        "--set",
        "fit.epochs=1",
        "--seeds",
        "2",
        "--jobs",
        "1",
        "--engine",
        "per-run",  # in this process, whose Keras is TensorFlow's
        "--results",
        res,
    ]
    assert cli.main([str(a) for a in argv]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "mean ± std over seeds" in out and "tiny[fit.epochs=1]" in out
    folder = res / "tiny[fit.epochs=1]"
    assert {"runs.csv", "history.csv", "spec.json"} <= {p.name for p in folder.iterdir()}
    import pandas as pd

    assert pd.read_csv(folder / "runs.csv")["seed"].tolist() == [0, 1]
    # the same command again finds both seeds stored
    assert cli.main([str(a) for a in argv]) == 0
    assert "2 already stored, skipped" in capsys.readouterr().err


# -- mistakes found before anything trains ---------------------------------------------------


def run_argv(d, root, *extra):
    """`run tiny` in this process (per-run: its Keras is TensorFlow's, the engine would need a worker)."""
    argv = ["--experiments", str(d), "run", "tiny", "--jobs", "1", "--engine", "per-run"]
    return [*argv, "--results", str(root), *extra]


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_jobs_below_one_is_refused(write_experiments, tiny_spec, tmp_path, capsys, jobs):
    d = write_experiments([tiny_spec])
    assert cli.main(["--experiments", str(d), "run", "tiny", "--jobs", jobs, "--results", str(tmp_path)]) == 2
    assert f"error: --jobs {jobs}: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "tiny").exists()


def test_an_unwritable_results_folder_stops_before_training(write_experiments, tiny_spec, tmp_path, capsys):
    d, root = write_experiments([tiny_spec]), tmp_path / "file"
    root.write_text("not a folder")  # unwritable for anyone, root included
    assert cli.main(run_argv(d, root)) == 2
    err = capsys.readouterr().err
    assert f"error: cannot write results to {root / 'tiny'}" in err and "--results DIR" in err
    assert "run" not in err.split("error:")[0]  # nothing trained: no progress line before the error


GOOD_RUNS = "experiment,seed,spec_hash,status,test_accuracy\ntiny,0,abc,ok,0.9\n"


@pytest.mark.parametrize(
    "file, text, fragment",
    [
        ("runs.csv", b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage", "it is not text"),
        ("runs.csv", GOOD_RUNS + 'tiny,1,abc,"ok,0.8\n', "bad CSV"),
        ("runs.csv", "experiment,se\n", "its header lacks seed, spec_hash, status"),
        ("runs.csv", GOOD_RUNS + "tiny,1,abc\n", "row 3 has 3 fields, the header 5: the row is cut short"),
        ("runs.csv", GOOD_RUNS + "tiny,1,ab", "its last row is cut short"),
        ("history.csv", "experiment,seed,spec_hash,epoch,loss\ntiny,0,abc,1", "its last row is cut short"),
    ],
    ids=["garbage", "bad_quoting", "header_cut", "row_cut", "file_cut", "history_cut"],
)
def test_a_damaged_results_file_stops_run_and_compare_and_is_kept(
    write_experiments, tiny_spec, tmp_path, capsys, file, text, fragment
):
    d, root = write_experiments([tiny_spec]), tmp_path / "res"
    (root / "tiny").mkdir(parents=True)
    path = root / "tiny" / file
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    if file == "history.csv":
        (root / "tiny" / "runs.csv").write_text(GOOD_RUNS)
    before = path.read_bytes()
    assert cli.main(run_argv(d, root)) == 2
    err = capsys.readouterr().err
    assert f"error: {path} is damaged: " in err and fragment in err, err
    assert f"mv '{path}' '{path}.damaged'" in err
    assert cli.main(["--experiments", str(d), "compare", "tiny", "--results", str(root), "--no-plots"]) == 2
    assert f"error: {path} is damaged: " in capsys.readouterr().err
    assert path.read_bytes() == before  # never overwritten


def test_too_few_rows_stop_before_training(write_experiments, tiny_spec, tmp_path, capsys):
    path = tmp_path / "few.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i},{'abc'[i % 3]}\n" for i in range(4)))
    tiny_spec["data"] = {"dataset": "csv", "path": str(path), "target": "y", "validation_size": 0.5}
    d = write_experiments([tiny_spec])
    assert cli.main(run_argv(d, tmp_path / "res")) == 2
    err = capsys.readouterr().err
    assert "error: experiment 'tiny'" in err and "are too few to split" in err and "Traceback" not in err
    assert not (tmp_path / "res" / "tiny" / "runs.csv").exists()


def test_set_a_path_value(write_experiments, tiny_spec, tmp_path, capsys, keras_ready):
    path = tmp_path / "data" / "flowers.csv"
    path.parent.mkdir()
    path.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 5},{'abc'[i % 3]}\n" for i in range(30)))
    tiny_spec["fit"] = {"epochs": 1, "batch_size": 16}
    d, root = write_experiments([tiny_spec]), tmp_path / "res"
    argv = run_argv(
        d, root, "--set", "data.dataset=csv", "--set", f"data.path={path}", "--set", "data.target=y"
    )
    assert cli.main(argv) == 0, capsys.readouterr().err
    escaped = str(path).replace("/", "%2F")
    folder = root / f"tiny[data.dataset=csv,data.path={escaped},data.target=y]"
    assert pd.read_csv(folder / "runs.csv")["status"].tolist() == ["ok"]
    from harness import comparison

    stored = json.loads((folder / "spec.json").read_text())
    assert comparison.run_command(folder.name, root, stored).startswith("python -m harness run tiny --set")


def test_run_of_a_cv_experiment_says_over_seeds_x_folds(
    write_experiments, tiny_spec, tmp_path, capsys, keras_ready
):
    tiny_spec["data"]["cv"] = {"folds": 2}
    d = write_experiments([tiny_spec])
    res = tmp_path / "res"
    argv = ["--experiments", d, "run", "tiny", "--set", "fit.epochs=1", "--jobs", "1", "--engine", "per-run"]
    argv += ["--results", res]
    assert cli.main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert "mean ± std over seeds x folds" in out and "over seeds\n" not in out
    line = next(x for x in out.splitlines() if x.startswith("tiny[fit.epochs=1]"))
    assert line.split()[1:3] == ["2", "2"]  # runs = 1 seed x 2 folds, over 2 folds


def test_output_into_a_closed_pipe_ends_quietly(harness_env):
    """`python -m harness list | head -1`: the reader leaves early; no traceback, no "Exception ignored"."""
    process = subprocess.Popen(
        [PYTHON, "-m", "harness", "list"],
        cwd=ROOT,
        env=harness_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # before the harness writes a line
    err = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert own_lines(err) == []
