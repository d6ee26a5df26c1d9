"""harness.search: grid and random searches expand into named trial variants at load time (no Keras)."""

import copy
import json
import pickle
import subprocess

import pytest
from conftest import PYTHON, ROOT

from harness import cli, comparison, registry, search
from harness.errors import HarnessError, SpecError

LR = "compile.optimizer.learning_rate"
OPT = "compile.optimizer.class_name"


def searched(tiny_spec, space, name="tiny_search"):
    raw = copy.deepcopy(tiny_spec)
    raw.update(name=name, search=space)
    raw["compile"]["optimizer"] = {"class_name": "adam", "learning_rate": 0.001}
    return raw


def load(write_experiments, *raws):
    """The experiments `raws` declare, loaded (without the project's own)."""
    mine = {raw["name"] for raw in raws}
    specs = registry.discover([write_experiments(list(raws))])
    return {n: s for n, s in specs.items() if n in mine or (search.of(s) and search.of(s).name in mine)}


# -- grid -------------------------------------------------------------------------------


def test_grid_is_the_cross_product_with_readable_names(tiny_spec, write_experiments):
    specs = load(
        write_experiments, searched(tiny_spec, {"grid": {LR: [0.01, 0.1, 1.0], OPT: ["adam", "sgd"]}})
    )
    trials = [s for s in specs.values() if search.of(s)]
    assert [t.name for t in trials] == [
        "tiny_search[learning_rate=0.01,class_name=adam]",
        "tiny_search[learning_rate=0.01,class_name=sgd]",
        "tiny_search[learning_rate=0.1,class_name=adam]",
        "tiny_search[learning_rate=0.1,class_name=sgd]",
        "tiny_search[learning_rate=1.0,class_name=adam]",
        "tiny_search[learning_rate=1.0,class_name=sgd]",
    ]
    assert "tiny_search" not in specs  # the search stands for its trials
    values = [(t.compile["optimizer"]["learning_rate"], t.compile["optimizer"]["class_name"]) for t in trials]
    assert values == [(lr, opt) for lr in (0.01, 0.1, 1.0) for opt in ("adam", "sgd")]
    first = trials[0]
    assert first.base == "tiny_search" and dict(first.overrides) == {LR: 0.01, OPT: "adam"}
    assert first.tags == ("tiny", "tiny_search") and first.seeds == (0,) and first.fit["epochs"] == 2
    assert len({t.hash for t in trials}) == 6
    info = search.of(first)
    assert (info.name, info.kind, info.paths, info.trials) == ("tiny_search", "grid", (LR, OPT), 6)
    assert info.summary() == "grid of 6 trials over learning_rate × class_name"


def test_a_trial_is_the_base_with_its_overrides(tiny_spec, write_experiments):
    specs = load(write_experiments, searched(tiny_spec, {"grid": {"fit.epochs": [3]}}))
    trial = specs["tiny_search[epochs=3]"]
    assert trial.hash == search.of(trial).base.with_overrides({"fit.epochs": 3}).hash
    again = pickle.loads(pickle.dumps(trial))  # worker processes get trials like any spec
    assert again.name == trial.name and again.hash == trial.hash


def test_labels_use_the_whole_path_when_the_last_part_is_ambiguous_or_an_index():
    assert search.labels(["model.0.units", "model.1.units", LR]) == {
        "model.0.units": "model.0.units",
        "model.1.units": "model.1.units",
        LR: "learning_rate",
    }
    assert search.labels(["model.0", "fit.epochs"]) == {"model.0": "model.0", "fit.epochs": "epochs"}
    assert (
        search.trial_name("s", {"model.0.units": 8, "model.1.units": 3})
        == "s[model.0.units=8,model.1.units=3]"
    )
    assert search.trial_name("s", {"x.a": True, "x.b": None, "x.c": [1, 2]}) == "s[a=true,b=null,c=[1,2]]"


def test_a_search_over_a_variant_and_variants_of_a_search(tiny_spec, write_experiments):
    base = copy.deepcopy(tiny_spec)
    variant = {
        "name": "tiny_wide",
        "base": "tiny",
        "overrides": {"model.0.units": 8},
        "search": {"grid": {"fit.epochs": [1, 2]}},
    }
    specs = load(write_experiments, base, variant)
    assert [n for n in specs] == ["tiny", "tiny_wide[epochs=1]", "tiny_wide[epochs=2]"]
    assert specs["tiny_wide[epochs=2]"].model[0]["units"] == 8


# -- random -----------------------------------------------------------------------------


SPACE = {
    LR: {"loguniform": [1e-4, 1.0]},
    "fit.batch_size": {"int": [4, 8]},
    OPT: {"choice": ["adam", "sgd", "rmsprop"]},
    "model.0.units": {"int": [2, 64]},
}


def test_random_draws_are_deterministic_for_a_search_seed_and_within_bounds():
    kind, points = search.points("r", {"random": SPACE, "trials": 20, "seed": 7})
    assert kind == "random" and 15 <= len(points) <= 20  # a point drawn twice is one trial
    assert search.points("r", {"random": SPACE, "trials": 20, "seed": 7}) == (kind, points)
    assert search.points("r", {"random": SPACE, "trials": 20, "seed": 8})[1] != points
    for p in points:
        assert 1e-4 <= p[LR] <= 1.0 and isinstance(p[LR], float)
        assert p["fit.batch_size"] in range(4, 9) and type(p["fit.batch_size"]) is int
        assert p[OPT] in ("adam", "sgd", "rmsprop")
    assert {p["fit.batch_size"] for p in points} == set(range(4, 9))  # both ends included
    rates = sorted(p[LR] for p in points)
    assert rates[0] < 1e-2 < rates[-1]  # log-uniform: spread over the decades


def test_uniform_draws_and_the_default_search_seed():
    _, points = search.points("r", {"random": {"model.1.rate": {"uniform": [0.1, 0.2]}}, "trials": 50})
    assert all(0.1 <= p["model.1.rate"] <= 0.2 for p in points)
    assert (
        points
        == search.points("r", {"random": {"model.1.rate": {"uniform": [0.1, 0.2]}}, "trials": 50, "seed": 0})[
            1
        ]
    )


def test_random_search_trials_load_the_same_every_time(tiny_spec, write_experiments):
    raw = searched(tiny_spec, {"random": {LR: {"loguniform": [1e-3, 1e-1]}}, "trials": 4, "seed": 3})
    first, second = load(write_experiments, raw), load(write_experiments, raw)
    assert list(first) == list(second) and len(first) == 4
    assert all(n.startswith("tiny_search[learning_rate=") for n in first)
    info = search.of(next(iter(first.values())))
    assert info.summary() == "random search of 4 trials over learning_rate (seed 3)"


# -- mistakes ---------------------------------------------------------------------------

BAD_SEARCHES = [
    (
        "unknown_path",
        {"grid": {"data.test_sise": [0.1]}},
        "search.grid.data.test_sise",
        ["unknown override path", "Did you mean 'test_size'?"],
    ),
    (
        "unknown_section",
        {"grid": {"modle.0.units": [4]}},
        "search.grid.modle.0.units",
        ["not a spec section", "Did you mean 'model'?"],
    ),
    ("empty_grid", {"grid": {}}, "search.grid", ["empty search space"]),
    ("empty_values", {"grid": {LR: []}}, f"search.grid.{LR}", ["non-empty list of values"]),
    ("values_not_a_list", {"grid": {LR: 0.1}}, f"search.grid.{LR}", ["got 0.1", "non-empty list of values"]),
    ("repeated_values", {"grid": {LR: [0.1, 0.1]}}, f"search.grid.{LR}", ["the values repeat"]),
    (
        "bad_value",
        {"grid": {LR: [0.1, -1.0]}},
        f"search.grid.{LR}",
        ["got -1.0", "positive number", "in trial 'tiny_search[learning_rate=-1.0]'"],
    ),
    (
        "output_units",
        {"grid": {"model.1.units": [3, 4]}},
        "search.grid.model.1.units",
        ["one unit per class"],
    ),
    ("no_kind", {"grids": {LR: [0.1]}}, "search", ["a search is {'grid'"]),
    ("both_kinds", {"grid": {LR: [0.1]}, "random": {}}, "search", ["a search is"]),
    (
        "grid_with_trials",
        {"grid": {LR: [0.1]}, "trials": 3},
        "search.trials",
        ["a grid search takes only grid"],
    ),
    ("empty_random", {"random": {}, "trials": 3}, "search.random", ["empty search space"]),
    (
        "unknown_distribution",
        {"random": {LR: {"logunifrom": [0.1, 1.0]}}, "trials": 3},
        f"search.random.{LR}",
        ["a distribution is one of"],
    ),
    (
        "loguniform_zero",
        {"random": {LR: {"loguniform": [0, 1.0]}}, "trials": 3},
        f"search.random.{LR}",
        ["0 < low < high"],
    ),
    (
        "uniform_reversed",
        {"random": {LR: {"uniform": [1.0, 0.1]}}, "trials": 3},
        f"search.random.{LR}",
        ["low < high"],
    ),
    (
        "int_floats",
        {"random": {"fit.epochs": {"int": [1.5, 3]}}, "trials": 3},
        "search.random.fit.epochs",
        ["integer bounds"],
    ),
    (
        "empty_choice",
        {"random": {OPT: {"choice": []}}, "trials": 3},
        f"search.random.{OPT}",
        ["non-empty list"],
    ),
    (
        "no_trials",
        {"random": {LR: {"loguniform": [0.1, 1.0]}}},
        "search.trials",
        ["positive number of trials"],
    ),
    (
        "bad_seed",
        {"random": {LR: {"loguniform": [0.1, 1.0]}}, "trials": 2, "seed": -1},
        "search.seed",
        ["non-negative integer"],
    ),
    (
        "random_unknown_path",
        {"random": {"fit.epoch": {"int": [1, 3]}}, "trials": 2},
        "search.random.fit.epoch",
        ["Did you mean 'epochs'?"],
    ),
]


@pytest.mark.parametrize(
    "space, path, fragments", [case[1:] for case in BAD_SEARCHES], ids=[case[0] for case in BAD_SEARCHES]
)
def test_a_bad_search_names_the_experiment_and_the_search_path(
    space, path, fragments, tiny_spec, write_experiments, check_message
):
    d = write_experiments([searched(tiny_spec, space)])
    with pytest.raises(SpecError) as caught:
        registry.discover([d])
    check_message(str(caught.value), "tiny_search", path, fragments)
    assert str(d / "exps.py") in str(caught.value)


def test_a_bad_search_exits_2_before_anything_runs(tiny_spec, write_experiments, tmp_path, capsys):
    d = write_experiments([searched(tiny_spec, {"grid": {"fit.epoch": [1, 2]}})])
    assert (
        cli.main(
            ["--experiments", str(d), "run", "tiny_search", "--results", str(tmp_path / "res"), "--jobs", "1"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("error: experiment 'tiny_search'")
        and "search.grid.fit.epoch: " in err
        and len(err.strip().splitlines()) == 1
    )
    assert not (tmp_path / "res").exists()


def test_a_trial_named_like_another_experiment_is_refused(tiny_spec, write_experiments):
    clash = {**copy.deepcopy(tiny_spec), "name": "tiny_search[epochs=3]"}
    with pytest.raises(HarnessError, match="two experiments are named 'tiny_search\\[epochs=3\\]'"):
        load(write_experiments, searched(tiny_spec, {"grid": {"fit.epochs": [3]}}), clash)


# -- selecting, listing, showing ----------------------------------------------------------


@pytest.fixture
def two_searches(tiny_spec, write_experiments):
    d = write_experiments(
        [
            copy.deepcopy(tiny_spec),
            searched(tiny_spec, {"grid": {LR: [0.01, 0.1], OPT: ["adam", "sgd"]}}, name="lr_grid"),
            searched(
                tiny_spec,
                {"random": {LR: {"loguniform": [1e-3, 1.0]}}, "trials": 3, "seed": 1},
                name="lr_random",
            ),
        ]
    )
    return d, registry.discover([d])


def names(chosen):
    return [s.name for s in chosen]


def test_selecting_a_search_selects_its_trials(two_searches):
    _, specs = two_searches
    grid = [n for n in specs if n.startswith("lr_grid[")]
    assert names(registry.select(specs, ["lr_grid"])) == grid and len(grid) == 4
    assert names(registry.select(specs, ["lr_*"])) == [n for n in specs if n.startswith("lr_")]
    assert names(registry.select(specs, ["lr_grid[*sgd]"])) == [
        "lr_grid[learning_rate=0.01,class_name=sgd]",
        "lr_grid[learning_rate=0.1,class_name=sgd]",
    ]
    assert names(registry.select(specs, ["lr_grid[learning_rate=0.1,class_name=adam]"])) == [
        "lr_grid[learning_rate=0.1,class_name=adam]"
    ]
    assert names(registry.select(specs, suite="lr_random")) == [
        n for n in specs if n.startswith("lr_random[")
    ]
    with pytest.raises(HarnessError, match="Did you mean 'lr_grid'"):
        registry.select(specs, ["lr_gird"])


def test_compare_selects_a_search_by_name(two_searches, tmp_path):
    _, specs = two_searches
    chosen, hashes = comparison.select(specs, tmp_path, ["lr_grid"])
    assert (
        chosen == [n for n in specs if n.startswith("lr_grid[")]
        and hashes[chosen[0]] == specs[chosen[0]].hash
    )
    trial = json.loads(specs[chosen[0]].to_json())
    assert comparison.run_command(chosen[0], "results", trial) == f"python -m harness run '{chosen[0]}'"


def test_list_shows_a_search_as_one_line(two_searches, capsys):
    d, _ = two_searches
    assert cli.main(["--experiments", str(d), "list"]) == 0
    out = capsys.readouterr().out
    assert "lr_grid[" not in out and "lr_random[" not in out
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "grid of 4 trials over learning_rate × class_name: a tiny iris net for tests" in lines["lr_grid"]
    assert "random search of 3 trials over learning_rate (seed 1)" in lines["lr_random"]
    assert "tiny,lr_grid" not in lines["lr_grid"]  # the search's own tags


def test_show_a_search_prints_its_base_and_trials(two_searches, capsys):
    d, specs = two_searches
    assert cli.main(["--experiments", str(d), "show", "lr_grid"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[: out.index("\nspec hash")])["name"] == "lr_grid"
    assert "grid of 4 trials over learning_rate × class_name:" in out
    rows = [line.split() for line in out.splitlines()]
    assert all([n, specs[n].hash] in rows for n in specs if n.startswith("lr_grid["))


def test_list_with_searches_imports_no_keras(two_searches, harness_env):
    d, _ = two_searches
    code = (
        "import sys\nfrom harness import cli\nrc = cli.main(sys.argv[1:])\n"
        "assert not [m for m in ('tensorflow', 'keras') if m in sys.modules]\nsys.exit(rc)\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", code, "--experiments", str(d), "list"],
        cwd=ROOT,
        env=harness_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# -- the project's learning-rate experiments ----------------------------------------------


def test_the_learning_rate_searches():
    specs = registry.discover()
    grid = names(registry.select(specs, ["iris_lr_grid"]))
    assert len(grid) == 12 and "iris_lr_grid[learning_rate=100.0,class_name=sgd]" in grid
    rates = [s.compile["optimizer"]["learning_rate"] for s in registry.select(specs, ["iris_lr_random"])]
    assert len(rates) == 8 and all(1e-4 <= r <= 1.0 for r in rates)
    for name in grid + names(registry.select(specs, ["iris_lr_random"])):
        assert specs[name].data["validation_size"] == 0.2 and specs[name].data["dataset"] == "iris"
        assert isinstance(
            specs[name].compile["optimizer"]["learning_rate"], float
        )  # Keras refuses an int rate


def test_compare_leaves_out_a_trial_whose_runs_all_diverged(two_searches, tmp_path, fake_results):
    _, specs = two_searches
    trials = [specs[n] for n in specs if n.startswith("lr_grid[")]
    for trial in trials[:-1]:
        fake_results.store(tmp_path, trial, [fake_results.row(trial, s) for s in range(3)])
    nan = float("nan")
    diverged = [fake_results.row(trials[-1], s, test_accuracy=nan, status="diverged") for s in range(3)]
    fake_results.store(tmp_path, trials[-1], diverged)
    chosen, hashes = comparison.select(specs, tmp_path, ["lr_grid"])
    lines = []
    frame = comparison.main(chosen, tmp_path, plots=False, current_hashes=hashes, out=lines.append).table
    assert list(frame["experiment"]) == [t.name for t in trials[:-1]]
    assert any(line.startswith(f"note: {trials[-1].name}: left out") for line in lines)
    with pytest.raises(
        HarnessError, match="no usable runs"
    ):  # alone, or as the baseline, it is still an error
        comparison.main([trials[-1].name], tmp_path, plots=False, out=lines.append)
    with pytest.raises(HarnessError, match="no usable runs"):
        comparison.main(chosen, tmp_path, baseline=trials[-1].name, plots=False, out=lines.append)
