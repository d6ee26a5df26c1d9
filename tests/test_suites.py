"""The bundled suites do what their modules claim, end to end (slow: they train whole suites).

Run with `./harness.sh test -m slow`. Each trains into a temporary results folder.
"""

import re

import pandas as pd
import pytest

from harness import cli

pytestmark = pytest.mark.slow


def _run(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_overfitting_suite_baseline_overfits_and_remedies_shrink_the_gap(tmp_path, capsys):
    root = str(tmp_path)
    _run(["run", "--suite", "overfitting", "--results", root], capsys)
    _run(["compare", "--suite", "overfitting", "--results", root, "--no-plots"], capsys)
    table = pd.read_csv(tmp_path / "comparisons" / "overfitting.csv").set_index("experiment")
    assert table.loc["overfit_baseline", "diagnosis"].startswith("overfitting")
    shrunk = table[(table["gap_test_loss_verdict"] == "better") & (table["gap_test_loss_diff_ci95_high"] < 0)]
    assert len(shrunk) >= 3, table["gap_test_loss_verdict"]


def test_underfitting_suite_baseline_underfits_and_remedies_raise_train_accuracy(tmp_path, capsys):
    root = str(tmp_path)
    _run(["run", "--suite", "underfitting", "--results", root], capsys)
    _run(["compare", "--suite", "underfitting", "--results", root, "--no-plots"], capsys)
    table = pd.read_csv(tmp_path / "comparisons" / "underfitting.csv").set_index("experiment")
    assert table.loc["underfit_baseline", "diagnosis"].startswith("underfitting")
    raised = table[
        (table["train_accuracy_verdict"] == "better") & (table["train_accuracy_diff_ci95_low"] > 0)
    ]
    assert len(raised) >= 2, table["train_accuracy_verdict"]


@pytest.mark.parametrize(
    "name, problem",
    [
        ("overfit_baseline", "overfitting"),
        ("deep_sigmoid", "vanishing gradients"),
        ("lr_too_high", "exploding gradients"),
    ],
)
def test_doctor_names_the_problem_and_a_remedy_removes_it(name, problem, tmp_path, capsys):
    out = _run(["doctor", name, "--results", str(tmp_path)], capsys)
    shown = next(line for line in out.splitlines() if line.startswith(f"{name}: problems per seed: "))
    assert re.search(rf"\b{problem} [345]/5\b", shown), shown  # shown by most of the 5 seeds
    verdicts = pd.read_csv(tmp_path / "comparisons" / f"doctor_{name}.csv")
    removed = verdicts[(verdicts["problem"] == problem) & (verdicts["outcome"] == "removed")]
    assert len(removed) >= 1, verdicts[["remedy", "problem", "outcome"]]
    lower = {"overfitting": True, "vanishing gradients": True, "exploding gradients": False}[problem]
    for _, r in removed.iterrows():
        assert (r["diff_ci95_high"] < 0) if lower else (r["diff_ci95_low"] > 0)
