"""harness.doctor: remedies derived from a spec, problems over seeds, verdicts, and `doctor` end to end."""

import copy
import math

import pandas as pd
import pytest

from harness import cli, doctor
from harness.spec import from_dict

DEEP = {
    "name": "deep",
    "data": {"dataset": "iris", "validation_size": 0.2, "train_fraction": 0.5},
    "model": [
        {
            "class_name": "Dense",
            "units": 8,
            "activation": "sigmoid",
            "kernel_regularizer": {"class_name": "L2", "l2": 0.1},
        },
        {"class_name": "Dense", "units": 8, "activation": "sigmoid"},
        {"class_name": "Dense", "units": 3, "activation": "softmax"},
    ],
    "compile": {"optimizer": {"class_name": "SGD", "learning_rate": 0.5}},
    "fit": {"epochs": 4, "batch_size": 16},
    "seeds": [0, 1],
}


def _remedies(problem, raw=DEEP):
    return {name: v for p, name, v in doctor.remedy_specs(from_dict(copy.deepcopy(raw)), [problem])}


def test_overfitting_remedies_change_only_what_they_name():
    r = _remedies("overfitting")
    assert list(r) == ["more_data", "smaller_model", "l2", "dropout", "early_stopping"]
    assert r["more_data"].data["train_fraction"] == 1.0 and r["more_data"].model == from_dict(DEEP).model
    assert [layer["units"] for layer in r["smaller_model"].model] == [2, 2, 3]
    assert [layer.get("kernel_regularizer", {}).get("l2") for layer in r["l2"].model] == [0.01, 0.01, None]
    assert [layer["class_name"] for layer in r["dropout"].model] == [
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    stop = r["early_stopping"].fit["callbacks"][-1]
    assert stop["class_name"] == "EarlyStopping" and stop["restore_best_weights"] is True
    assert all(v.name == f"deep[remedy={k}]" and v.base == "deep" and v.seeds == (0, 1) for k, v in r.items())


def test_remedies_that_do_not_apply_are_left_out():
    raw = copy.deepcopy(DEEP)
    raw["data"] = {"dataset": "iris"}  # all training data, no validation split
    raw["compile"]["optimizer"] = {"class_name": "Adam", "learning_rate": 0.01}
    assert "more_data" not in _remedies("overfitting", raw) and "early_stopping" not in _remedies(
        "overfitting", raw
    )
    assert "adam" not in _remedies("underfitting", raw)


def test_gradient_and_divergence_remedies():
    v = _remedies("vanishing gradients")
    assert list(v) == ["relu", "relu_he_init", "batchnorm", "adam"]
    assert [layer.get("activation") for layer in v["relu"].model] == ["relu", "relu", "softmax"]
    assert v["relu_he_init"].model[0]["kernel_initializer"] == "he_normal"
    assert [layer["class_name"] for layer in v["batchnorm"].model] == [
        "Dense",
        "BatchNormalization",
        "Activation",
    ] * 2 + ["Dense"]
    assert (
        v["batchnorm"].model[2]["activation"] == "sigmoid"
        and v["batchnorm"].model[0]["activation"] == "linear"
    )
    d = _remedies("diverged")
    assert d["clipnorm"].compile["optimizer"] == {"class_name": "SGD", "learning_rate": 0.5, "clipnorm": 1.0}
    assert d["lower_lr"].compile["optimizer"]["learning_rate"] == pytest.approx(0.05)
    u = _remedies("underfitting")
    assert u["higher_lr"].compile["optimizer"]["learning_rate"] == pytest.approx(5.0)
    assert u["more_epochs"].fit["epochs"] == 12 and [
        layer["units"] for layer in u["more_capacity"].model
    ] == [32, 32, 3]
    assert all("kernel_regularizer" not in layer for layer in u["less_regularisation"].model)


def test_each_remedy_once_for_the_first_problem_it_targets():
    both = doctor.remedy_specs(from_dict(DEEP), ["diverged", "exploding gradients", "vanishing gradients"])
    names = [name for _, name, _ in both]
    assert names == ["clipnorm", "lower_lr", "adam", "relu", "relu_he_init", "batchnorm"]
    assert [p for p, name, _ in both if name == "adam"] == ["diverged"]


def test_default_learning_rate_comes_from_keras():
    raw = copy.deepcopy(DEEP)
    raw["compile"]["optimizer"] = "sgd"
    assert _remedies("diverged", raw)["lower_lr"].compile["optimizer"]["learning_rate"] == pytest.approx(
        0.001
    )


def test_problems_shown_by_half_of_the_seeds_most_serious_first():
    seeds = pd.DataFrame({"problems": [{"overfitting", "diverged"}, {"overfitting"}, set(), {"diverged"}]})
    found, counts = doctor.problems_of(seeds)
    assert found == ["diverged", "overfitting"] and counts["overfitting"] == 2 and counts["underfitting"] == 0
    assert doctor.problems_of(pd.DataFrame({"problems": [{"overfitting"}, set(), set()]}))[0] == []


def _seeds(gaps, problems):
    return pd.DataFrame(
        {
            "seed": range(len(gaps)),
            "gap_test_loss": gaps,
            "test_accuracy": [0.9] * len(gaps),
            "fit_seconds": [1.0] * len(gaps),
            "problems": problems,
        }
    )


def test_verdict_row_against_hand_computed_paired_interval():
    base = _seeds([1.0, 1.2, 1.1], [{"overfitting"}] * 3)
    remedy = _seeds([0.2, 0.5, 0.2], [set(), set(), {"overfitting"}])
    row = doctor.verdict_row("overfitting", "l2", base, remedy)
    # differences -0.8, -0.7, -0.9: mean -0.8, sd 0.1, t(0.975, 2) = 4.302653
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert row["diff"] == pytest.approx(-0.8)
    assert (row["diff_ci95_low"], row["diff_ci95_high"]) == pytest.approx(
        (-0.8 - half, -0.8 + half), abs=1e-5
    )
    assert row["effect"] == "better" and row["still_showing"] == "1/3" and row["outcome"] == "removed"
    still = doctor.verdict_row("overfitting", "l2", base, _seeds([0.2, 0.5, 0.2], [{"overfitting"}] * 3))
    assert still["outcome"] == "improved, problem remains"
    noisy = doctor.verdict_row("overfitting", "l2", base, _seeds([0.2, 1.9, 1.1], [set()] * 3))
    assert noisy["effect"] == "no evidence" and noisy["outcome"] == "no evidence (problem absent)"


def test_gradient_spread_from_update_ratio_columns():
    history = pd.DataFrame(
        {"epoch": [1, 2], "update_ratio.0.dense": [0.001, 0.001], "update_ratio.2.dense": [0.1, 0.1]}
    )
    assert doctor.gradient_spread(history) == pytest.approx(2.0)
    assert math.isnan(doctor.gradient_spread(pd.DataFrame({"epoch": [1]})))


SLOW = {
    "name": "crawl",
    "description": "underfits: 16 units, plain SGD at a tiny rate, 10 epochs",
    "data": {"dataset": "digits"},
    "model": [
        {"class_name": "Dense", "units": 16, "activation": "relu"},
        {"class_name": "Dense", "units": 10, "activation": "softmax"},
    ],
    "compile": {"optimizer": {"class_name": "SGD", "learning_rate": 0.002}},
    "fit": {"epochs": 10, "batch_size": 32},
    "seeds": [0, 1, 2],
}


def test_doctor_end_to_end_diagnoses_underfitting_and_finds_a_remedy(
    write_experiments, tmp_path, capsys, keras_ready
):
    directory = write_experiments([SLOW])
    code = cli.main(
        ["--experiments", str(directory), "doctor", "crawl", "--results", str(tmp_path / "r"), "--jobs", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "crawl: problems per seed: underfitting 3/3" in out
    table = pd.read_csv(tmp_path / "r" / "comparisons" / "doctor_crawl.csv")
    assert set(table["problem"]) >= {"underfitting"}
    adam = table.set_index("remedy").loc["adam"]
    assert (
        adam["diff"] > 0.3
        and adam["diff_ci95_low"] > 0
        and adam["still_showing"] == "0/3"
        and adam["outcome"] == "removed"
    )
    assert "removed" in out and "adam" in out
    assert (tmp_path / "r" / "crawl[remedy=adam]" / "runs.csv").exists()
    # a second doctor reuses every stored run
    capsys.readouterr()
    assert (
        cli.main(
            [
                "--experiments",
                str(directory),
                "doctor",
                "crawl",
                "--results",
                str(tmp_path / "r"),
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    assert "0 runs to do" in capsys.readouterr().err


def test_doctor_names_one_experiment(write_experiments, tiny_spec, tmp_path, capsys):
    directory = write_experiments([tiny_spec, dict(tiny_spec, name="tiny2")])
    assert cli.main(["--experiments", str(directory), "doctor", "tiny*", "--results", str(tmp_path)]) == 2
    assert "doctor takes one experiment; 'tiny*' matches 2" in capsys.readouterr().err
