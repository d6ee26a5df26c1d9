"""harness.compare and `python -m harness compare` on hand-written results (no training, no TensorFlow)."""

import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_row, store_results

from harness import cli, comparison, registry, stats
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parent.parent
T_975_DF4 = 2.7764451051977987

EXPERIMENTS = textwrap.dedent("""
    EXPERIMENTS = [
        {"name": "toy_base", "data": {"validation_size": 0.2},
         "model": [{"class_name": "Dense", "units": 3, "activation": "softmax"}],
         "seeds": 5, "tags": ["toy"]},
        {"name": "toy_wide", "base": "toy_base", "overrides": {"fit.epochs": 50}},
        {"name": "toy_same", "base": "toy_base", "overrides": {"data.resplit": True}},
        {"name": "toy_unrun", "base": "toy_base", "overrides": {"fit.batch_size": 8}, "tags": ["other"]},
    ]
""")

BASE_TEST_ACC = [0.80, 0.82, 0.78, 0.84, 0.80]
WIDE_SHIFT = [0.05, 0.06, 0.04, 0.05, 0.06]  # mean 0.052; consistently above: "better"
SAME_SHIFT = [0.02, -0.02, 0.01, -0.01, 0.00]  # mean 0: "no evidence"


@pytest.fixture
def stored(tmp_path):
    """An experiments dir and a results dir holding toy_base, toy_wide and toy_same (toy_unrun never ran)."""
    exps = tmp_path / "exps"
    exps.mkdir()
    (exps / "toys.py").write_text(EXPERIMENTS)
    specs = registry.discover([str(exps)])
    root = tmp_path / "results"
    base, wide, same = specs["toy_base"], specs["toy_wide"], specs["toy_same"]
    store_results(root, base, [run_row(base, s, test_accuracy=a) for s, a in enumerate(BASE_TEST_ACC)])
    wide_rows = [
        run_row(wide, s, test_accuracy=a + d, train_loss=0.10)
        for s, (a, d) in enumerate(zip(BASE_TEST_ACC, WIDE_SHIFT))
    ]
    wide_rows += [run_row(wide, 5, test_accuracy=0.83)]  # a seed the baseline lacks: in the mean, not paired
    wide_rows += [run_row(wide, 6, test_accuracy=float("nan"), status="failed")]
    wide_rows += [
        run_row(wide, s, test_accuracy=0.10, spec_hash="0123456789ab") for s in range(5)
    ]  # an older spec: ignored
    store_results(root, wide, wide_rows)
    store_results(
        root,
        same,
        [run_row(same, s, test_accuracy=a + d) for s, (a, d) in enumerate(zip(BASE_TEST_ACC, SAME_SHIFT))],
    )
    return {"exps": str(exps), "root": str(root), "specs": specs}


def test_spec_hash_of_spec_json_equals_spec_hash(stored):
    for spec in stored["specs"].values():
        assert comparison.spec_hash(json.loads(spec.to_json())) == spec.hash


def test_comparison_numbers(stored):
    root = stored["root"]
    frame = comparison.main(
        ["toy_wide", "toy_same", "toy_base"], root, plots=False, out=lambda *a: None
    ).table
    assert list(frame.columns) == comparison.columns()
    assert list(frame["experiment"]) == ["toy_base", "toy_wide", "toy_same"]  # the declared base comes first
    assert set(frame["baseline"]) == {"toy_base"}
    rows = frame.set_index("experiment")

    base = rows.loc["toy_base"]
    assert base["runs"] == 5 and base["test_accuracy_mean"] == pytest.approx(0.808)
    # test accuracy 0.80 0.82 0.78 0.84 0.80: deviations -.008 .012 -.028 .032 -.008, squares sum 0.00208
    sd = math.sqrt(0.00208 / 4)
    assert base["test_accuracy_std"] == pytest.approx(sd)
    # the t interval on the logit scale (the delta method), back-transformed: inside [0, 1]
    half = T_975_DF4 * sd / math.sqrt(5) / (0.808 * 0.192)
    logit = math.log(0.808 / 0.192)
    assert base["test_accuracy_ci95_low"] == pytest.approx(1 / (1 + math.exp(half - logit)))
    assert base["test_accuracy_ci95_high"] == pytest.approx(1 / (1 + math.exp(-half - logit)))
    assert math.isnan(base["test_accuracy_new_ci95_low"])  # a fixed split has no new-data scope
    assert base["gap_test_loss_mean"] == pytest.approx(0.10) and base["gap_val_loss_mean"] == pytest.approx(
        0.05
    )
    assert base["gap_accuracy_mean"] == pytest.approx(0.95 - 0.808)
    assert base["test_accuracy_verdict"] == "baseline" and math.isnan(base["test_accuracy_diff"])
    assert base["scope"] == "this split; seeds vary initialisation and order" and base["scope_new"] == ""
    assert base["diagnosis"] == "good fit (5/5)"

    wide = rows.loc["toy_wide"]
    assert (
        wide["runs"] == 6
        and wide["stale_rows"] == 5
        and wide["not_ok_runs"] == 1
        and wide["seeds"] == "0 1 2 3 4 5"
    )
    assert wide["test_accuracy_mean"] == pytest.approx((sum(BASE_TEST_ACC) + sum(WIDE_SHIFT) + 0.83) / 6)
    assert wide["paired_seeds"] == 5
    # paired differences 0.05 0.06 0.04 0.05 0.06: mean 0.052, squared deviations sum 2.8e-4, variance 7e-5
    se = math.sqrt(7e-5) / math.sqrt(5)
    assert wide["test_accuracy_diff"] == pytest.approx(0.052)
    assert wide["test_accuracy_diff_ci95_low"] == pytest.approx(0.052 - T_975_DF4 * se)
    assert wide["test_accuracy_diff_ci95_high"] == pytest.approx(0.052 + T_975_DF4 * se)
    assert wide["test_accuracy_p_value"] < 0.001
    assert wide["test_accuracy_verdict"] == "better"
    assert wide["test_accuracy_verdict_words"] == "better on this split"
    # better on all 5 paired seeds: the probability of improvement with Wilson's interval
    assert (wide["test_accuracy_wins"], wide["test_accuracy_ties"], wide["test_accuracy_losses"]) == (5, 0, 0)
    assert wide["test_accuracy_prob_improvement"] == 1.0
    assert wide["test_accuracy_prob_improvement_ci95_low"] == pytest.approx(0.5655, abs=1e-4)
    # Holm over the two variants: the smaller p-value (toy_wide's) doubles; no runs needed where decided
    assert wide["test_accuracy_p_adjusted"] == pytest.approx(2 * wide["test_accuracy_p_value"])
    assert math.isnan(wide["test_accuracy_runs_needed"])
    # train loss 0.10 vs 0.20 on every seed, test loss equal: the gap is 0.10 wider, exactly
    assert wide["gap_test_loss_diff"] == pytest.approx(0.10) and wide["gap_test_loss_p_value"] == 0.0
    assert wide["gap_test_loss_verdict"] == "worse"  # lower is better for a gap
    assert wide["test_loss_verdict"] == "no evidence" and wide["test_loss_diff"] == pytest.approx(0.0)

    same = rows.loc["toy_same"]
    assert same["test_accuracy_diff"] == pytest.approx(0.0, abs=1e-12)
    assert same["test_accuracy_diff_ci95_low"] < 0 < same["test_accuracy_diff_ci95_high"]
    assert same["test_accuracy_verdict"] == "no evidence"
    assert same["test_accuracy_p_adjusted"] == pytest.approx(same["test_accuracy_p_value"])  # the larger p
    assert same["test_accuracy_runs_needed"] > 1000  # a difference of ~0 is out of reach
    # resplit: two scopes. This data set: the plain paired t over the 5 (seed, split) draws; new data of
    # this size: 30 test, 150 - 30 - 24 validation = 96 training samples -> corrected with 30/96
    assert (
        same["scope"] == "this data set; each seed its own split"
        and same["scope_new"] == "new data of this size"
    )
    assert same["diff_overlap_ratio"] == pytest.approx(30 / 96)
    d = pd.Series(SAME_SHIFT)
    plain, corrected = (T_975_DF4 * d.std() * math.sqrt(f) for f in (1 / 5, 1 / 5 + 30 / 96))
    assert same["test_accuracy_diff_ci95_high"] == pytest.approx(plain, abs=1e-12)
    assert same["test_accuracy_diff_new_ci95_high"] == pytest.approx(corrected, abs=1e-12)
    assert same["test_accuracy_new_p_adjusted"] == pytest.approx(same["test_accuracy_new_p_value"])  # alone
    assert same["test_accuracy_verdict_words"] == "no evidence on this data set or for new data"
    assert math.isnan(wide["test_accuracy_diff_new_ci95_low"])  # toy_wide pairs two fixed splits

    written = pd.read_csv(Path(root) / "comparisons" / "toy_wide+toy_same+toy_base.csv")
    assert list(written.columns) == comparison.columns()
    assert written.set_index("experiment").loc["toy_wide", "test_accuracy_diff"] == pytest.approx(0.052)


def test_baseline_choice(stored):
    loaded = [comparison.read(stored["root"], n) for n in ("toy_same", "toy_wide")]
    assert comparison.choose_baseline(loaded) == "toy_same"  # nobody's base is selected: the first
    assert comparison.choose_baseline(loaded, "toy_wide") == "toy_wide"
    frame = comparison.main(
        ["toy_wide"], stored["root"], baseline="toy_base", plots=False, out=lambda *a: None
    ).table
    assert list(frame["experiment"]) == ["toy_base", "toy_wide"]  # --baseline joins the comparison


def test_stale_rows_alone_are_not_runs(stored, tmp_path):
    spec = stored["specs"]["toy_base"]
    root = tmp_path / "stale"
    store_results(root, spec, [run_row(spec, 0, spec_hash="0000000000aa")])
    with pytest.raises(
        HarnessError,
        match=r"toy_base.*1 row\(s\) are from an older spec.*python -m harness run toy_base --results",
    ):
        comparison.read(root, "toy_base")


def test_cli_suite_in_a_subprocess_imports_no_tensorflow(stored):
    code = textwrap.dedent(f"""
        import json, sys
        from harness.cli import main
        rc = main(["--experiments", {stored["exps"]!r}, "compare", "--suite", "toy",
                   "--results", {stored["root"]!r}])
        print(json.dumps({{"rc": rc, "tf": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"rc": 0, "tf": False, "keras": False}
    root = Path(stored["root"])
    table = pd.read_csv(root / "comparisons" / "toy.csv")
    assert list(table["experiment"]) == ["toy_base", "toy_wide", "toy_same"]
    assert table.set_index("experiment").loc["toy_same", "test_accuracy_verdict"] == "no evidence"
    for name in ("toy_base", "toy_wide", "toy_same"):
        assert (root / name / "curves.png").stat().st_size > 1000
    assert (root / "comparisons" / "toy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = done.stdout.splitlines()
    block = lines[lines.index("test accuracy (test_accuracy; higher is better)") :]
    block = block[: block.index("")]
    assert any(line.startswith("toy_wide") and " better " in line and "5/5" in line for line in block)
    assert any(line.startswith("toy_same") and "no evidence" in line for line in block)
    assert any(line.startswith("Against toy_base (2 variants") for line in lines)
    assert "note: toy_wide: ignored 5 stored row(s) of an older spec" in done.stdout
    assert max(len(line) for line in lines if not line.startswith(("  /", "note:"))) <= 160


def test_cli_globs_and_missing_runs(stored, capsys):
    args = ["--experiments", stored["exps"], "compare", "toy_*", "--results", stored["root"], "--no-plots"]
    assert cli.main(args) == 2  # toy_unrun matches the pattern but never ran
    err = capsys.readouterr().err
    assert "'toy_unrun' has no stored runs" in err and "python -m harness run toy_unrun --results" in err
    assert cli.main([*args[:3], "toy_[bw]*", *args[4:]]) == 0
    out = capsys.readouterr().out
    assert "toy_wide" in out and "toy_same" not in out
    assert not (Path(stored["root"]) / "toy_base" / "curves.png").exists()  # --no-plots


def test_cli_compares_stored_only_variants_by_exact_name(stored):
    spec = stored["specs"]["toy_base"].with_overrides({"fit.epochs": 5}, name="toy_base[fit.epochs=5]")
    store_results(stored["root"], spec, [run_row(spec, s, test_accuracy=0.5) for s in range(3)])
    names, hashes = comparison.select(
        stored["specs"], stored["root"], ["toy_base[fit.epochs=5]", "toy_base"]
    )  # '[' is literal here
    assert names == ["toy_base[fit.epochs=5]", "toy_base"] and hashes == {
        "toy_base[fit.epochs=5]": None,
        "toy_base": stored["specs"]["toy_base"].hash,
    }
    frame = comparison.main(names, stored["root"], plots=False, out=lambda *a: None).table
    assert list(frame["experiment"]) == [
        "toy_base",
        "toy_base[fit.epochs=5]",
    ]  # its spec.json names toy_base as base
    names, _ = comparison.select(stored["specs"], stored["root"], suite="toy")
    assert "toy_base[fit.epochs=5]" not in names  # stored-only variants join only when named
    assert (
        comparison.run_command("toy_base[fit.epochs=5]", "results", json.loads(spec.to_json()))
        == "python -m harness run toy_base --set fit.epochs=5"
    )


def test_changed_definition_is_noted(stored):
    lines = []
    comparison.main(
        ["toy_base"],
        stored["root"],
        plots=False,
        current_hashes={"toy_base": "ffffffffffff"},
        out=lines.append,
    )
    assert any("definition changed since the stored runs" in line for line in lines)


def test_output_name():
    assert comparison.output_name(["a", "b"]) == "a+b"
    assert comparison.output_name(["a", "b"], suite="toy") == "toy"
    long = comparison.output_name([f"x[fit.callbacks.0={{'k': {i}}}]" * 3 for i in range(5)])
    assert len(long) <= 100 and "+4-more-" in long and "/" not in long


def test_trials_of_a_search_are_ranked_by_validation_accuracy_against_the_best(tmp_path):
    exps = tmp_path / "exps"
    exps.mkdir()
    (exps / "grid.py").write_text(
        textwrap.dedent("""
        EXPERIMENTS = [{"name": "g", "data": {"validation_size": 0.2}, "seeds": 3,
                        "model": [{"class_name": "Dense", "units": 3, "activation": "softmax"}],
                        "search": {"grid": {"fit.epochs": [5, 10, 20]}}}]
    """)
    )
    specs = registry.discover([str(exps)])
    root = tmp_path / "results"
    val = {
        "g[epochs=5]": [0.70, 0.72, 0.71],
        "g[epochs=10]": [0.90, 0.92, 0.91],
        "g[epochs=20]": [0.80, 0.83, 0.80],
    }
    for name, accs in val.items():
        rows = [run_row(specs[name], s, test_accuracy=a, val_accuracy=a) for s, a in enumerate(accs)]
        store_results(root, specs[name], rows)
    printed = []
    names, _ = comparison.select(specs, str(root), ["g"])
    frame = comparison.main(names, str(root), plots=False, out=printed.append).table
    assert list(frame["experiment"]) == ["g[epochs=10]", "g[epochs=20]", "g[epochs=5]"]
    assert list(frame["rank"]) == [1, 2, 3] and set(frame["baseline"]) == {"g[epochs=10]"}
    assert (Path(root) / "comparisons" / "g.csv").exists()
    text = "\n".join(printed)
    assert "trials of g, ranked by validation accuracy" in text
    assert text.index("[epochs=10] *") < text.index("[epochs=20]") < text.index("[epochs=5]")


def test_spec_hash_of_a_csv_spec_covers_the_file_as_spec_hash_does(tiny_spec, tmp_path):
    from harness.spec import from_dict

    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 4},{'abc'[i % 3]}\n" for i in range(30)))
    tiny_spec["data"] = {"dataset": "csv", "path": str(path), "target": "y"}
    spec = from_dict(tiny_spec)
    stored = json.loads(spec.to_json())
    before = spec.hash
    assert comparison.spec_hash(stored) == before
    path.write_text(path.read_text() + "1,1,a\n")
    assert comparison.spec_hash(stored) == from_dict(tiny_spec).hash != before
    path.unlink()
    assert comparison.spec_hash(stored) is None  # compare then takes the latest stored run's hash


# -- cross-validation: 1 seed x 5 folds x 2 repeats stored, then compared ---------------------

CV_EXPERIMENTS = textwrap.dedent("""
    EXPERIMENTS = [
        {"name": "iris_cv", "data": {"cv": {"folds": 5, "repeats": 2}},
         "model": [{"class_name": "Dense", "units": 4, "activation": "relu"},
                   {"class_name": "Dense", "units": 3, "activation": "softmax"}],
         "fit": {"epochs": 2, "batch_size": 16}, "seeds": 1},
        {"name": "iris_cv[remedy=more_capacity]", "base": "iris_cv", "overrides": {"model.0.units": 16}},
    ]
""")


def test_compare_of_a_cv_experiment_and_a_remedy_uses_corrected_intervals_holm_and_runs_needed(
    tmp_path, fake_results
):
    exps, root = tmp_path / "exps", tmp_path / "results"
    exps.mkdir()
    (exps / "cv.py").write_text(CV_EXPERIMENTS)
    rng = np.random.default_rng(3)
    for spec in registry.select(registry.discover([exps]), ["iris_cv*"]):  # 1 seed x 5 folds x 2 repeats
        # a partition's folds cover every row once, so the repeats' means differ little
        first = {
            "train_loss": rng.uniform(0.2, 0.6, 5),
            "test_loss": rng.uniform(0.2, 0.8, 5),
            "train_accuracy": rng.choice([0.9, 0.95, 1.0], 5),
            "test_accuracy": rng.choice([0.8, 0.9, 1.0], 5),
        }
        order = rng.permutation(5)
        second = {k: np.clip(v[order] + rng.normal(0, 0.01, 5), 0, 1) for k, v in first.items()}
        values = {k: np.concatenate([first[k], second[k]]) for k in first}
        rows = [
            fake_results.row(spec, 0, fold, **{k: float(v[fold]) for k, v in values.items()})
            for fold in range(10)
        ]
        fake_results.store(root, spec, rows)
    printed = []
    frame = comparison.main(
        ["iris_cv", "iris_cv[remedy=more_capacity]"], root, plots=False, out=printed.append
    ).table
    text = "\n".join(printed)
    scope = "this data set; each repeat of the 5-fold its own partition"
    assert (
        "Nadeau and Bengio's corrected resampled t (n_test/n_train 0.25)" in text
    )  # 30 held out, 120 trained
    assert f"Δ on {scope}" in text and "p Holm" in text and "paired by (seed, fold)" in text
    written = pd.read_csv(root / "comparisons" / "iris_cv+iris_cv[remedy=more_capacity].csv")
    rows = written.set_index("experiment")
    assert list(rows["scope"]) == [scope, scope] and list(rows["overlap_ratio"]) == [0.25, 0.25]
    remedy = rows.loc["iris_cv[remedy=more_capacity]"]
    assert remedy["paired_seeds"] == 10 and remedy["runs"] == 10 and remedy["paired_units"] == 2
    runs = {
        name: pd.read_csv(root / name / "runs.csv").set_index(["seed", "fold"])
        for name in ("iris_cv", "iris_cv[remedy=more_capacity]")
    }
    for table in runs.values():
        table["gap_test_loss"] = table["test_loss"] - table["train_loss"]
    assert sorted(runs["iris_cv"].index) == [(0, fold) for fold in range(10)]
    t_975_df9, t_975_df1 = 2.2621571627409915, 12.706204736174696
    for metric in comparison.VERSUS:
        d = (runs["iris_cv[remedy=more_capacity]"][metric] - runs["iris_cv"][metric]).to_numpy()
        new = t_975_df9 * d.std(ddof=1) * math.sqrt(1 / 10 + 30 / 120)  # Nadeau and Bengio by hand
        repeats = [d[:5].mean(), d[5:].mean()]  # one seed: the two repeats are the independent draws
        this = t_975_df1 * abs(repeats[0] - repeats[1]) / math.sqrt(2) / math.sqrt(2)
        assert remedy[f"{metric}_diff"] == pytest.approx(d.mean(), abs=1e-9)
        assert remedy[f"{metric}_diff_new_ci95_high"] - remedy[
            f"{metric}_diff_new_ci95_low"
        ] == pytest.approx(2 * new, rel=1e-6, abs=1e-12)
        width = remedy[f"{metric}_diff_ci95_high"] - remedy[f"{metric}_diff_ci95_low"]
        if metric.endswith("accuracy"):  # cut to [-1, 1]
            assert width <= 2 * this + 1e-9
        else:
            assert width == pytest.approx(2 * this, rel=1e-6, abs=1e-12)
        assert remedy[f"{metric}_new_p_adjusted"] == pytest.approx(remedy[f"{metric}_new_p_value"])  # alone
        if remedy[f"{metric}_new_verdict"] == "no evidence" and d.std(ddof=1) > 0:
            k = ((1.959963984540054 + 0.8416212335729143) * d.std(ddof=1) / d.mean()) ** 2
            expected = math.ceil(1 / (1 / k - 0.25)) if 1 / k > 0.25 else math.inf
            assert remedy[f"{metric}_new_runs_needed"] == max(2, expected)
        wins = sum(
            (r < 0) if comparison.VERSUS[metric] else (r > 0) for r in repeats
        )  # improvement: per repeat
        assert remedy[f"{metric}_wins"] + remedy[f"{metric}_ties"] + remedy[f"{metric}_losses"] == 2
        assert remedy[f"{metric}_wins"] == wins or repeats[0] == 0 or repeats[1] == 0
    base = frame.set_index("experiment").loc["iris_cv"]
    assert (
        base["test_accuracy_new_ci95_low"] <= base["test_accuracy_ci95_low"]
        or base["test_accuracy_new_ci95_low"] == 0
    )


# -- no interval leaves its metric's range, on every shipped suite --------------------------


def _skewed_runs(spec, rng):
    """Runs of `spec` on its seeds (and folds) with numbers pushed against their bounds: accuracies
    mostly 1 with a few poor splits, losses spread over three orders of magnitude above 0."""
    from harness.data import folds

    rows = []
    for seed in spec.seeds:
        for fold in folds(spec.data):
            accuracy = lambda: float(rng.choice([1.0, 1.0, 1.0, 0.967, 0.6]))  # noqa: E731
            loss = lambda: float(10 ** rng.uniform(-3.5, 0.5))  # noqa: E731
            rows.append(
                run_row(
                    spec,
                    seed,
                    fold,
                    train_accuracy=accuracy(),
                    val_accuracy=accuracy(),
                    test_accuracy=accuracy(),
                    train_loss=loss(),
                    val_loss=loss(),
                    test_loss=loss(),
                    fit_seconds=float(10 ** rng.uniform(-2, 1)),
                    epochs_run=2,
                )
            )
    return rows


def _outside(frame):
    """(experiment, column, value) of every interval bound in a comparison outside its metric's range."""
    found = []
    for column in frame.columns:
        for metric in [*comparison.METRICS, *comparison.GAPS, "fit_seconds"]:
            if column.startswith(f"{metric}_") and column.endswith(("_ci95_low", "_ci95_high")):
                if column.startswith((f"{metric}_diff", f"{metric}_prob_improvement")):
                    low, high = (0.0, 1.0) if "prob_improvement" in column else comparison.diff_bounds(metric)
                else:
                    low, high = comparison.bounds(metric)
                values = frame[column].dropna()
                found += [
                    (e, column, v)
                    for e, v in zip(frame.loc[values.index, "experiment"], values)
                    if not low <= v <= high
                ]
    return found


def test_no_interval_of_a_shipped_suite_leaves_its_metrics_range(tmp_path):
    specs = registry.discover()
    suites = sorted({tag for s in specs.values() for tag in s.tags} - {"iris"})  # "iris": all the others
    rng = np.random.default_rng(0)
    root = tmp_path / "results"
    for spec in specs.values():
        store_results(root, spec, _skewed_runs(spec, rng))
    # and a cross-validated variant of a suite, with repeats (no shipped suite uses cv)
    cv_specs = {}
    for spec in (s for s in specs.values() if "iris_overfitting" in s.tags):
        name = f"{spec.name}[cv]"
        cv = {"data.cv": {"folds": 3, "repeats": 2}, "data.resplit": False}
        cv_specs[name] = spec.with_overrides(cv, name=name).with_seeds([0, 1])
        store_results(root, cv_specs[name], _skewed_runs(cv_specs[name], rng))
    checked = plain_t_outside = 0
    for suite in [*suites, None]:
        names = list(cv_specs) if suite is None else [s.name for s in specs.values() if suite in s.tags]
        compared = comparison.compute(names, root, suite=suite)
        assert _outside(compared.table) == [], suite
        for _, row in compared.table.iterrows():  # the test has teeth: a t interval would have left [0, 1]
            half = stats.t_quantile(row["runs"]) * row["test_accuracy_std"] / math.sqrt(row["runs"])
            plain_t_outside += row["test_accuracy_mean"] + half > 1
        first = compared.text().split("\n\n")[0].splitlines()[2:]  # and what the table prints
        for line in first:
            cells = re.split(r"\s{2,}", line)
            accuracy, loss = (list(map(float, re.findall(r"-?\d+\.\d+", cell))) for cell in cells[4:6])
            assert all(0 <= v <= 1 for v in accuracy) and all(v >= 0 for v in loss), line
        checked += len(names)
    assert checked >= 70 and plain_t_outside > 10
