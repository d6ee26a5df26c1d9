"""The bundled suites do what their modules claim: their specs are well formed (fast), and end
to end (slow: they train whole suites).

Run the slow ones with `./harness.sh test -m slow`. Each trains into a temporary results folder.
"""

import re

import pandas as pd
import pytest

from harness import cli, registry
from harness.spec import thaw


def _run(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.slow
def test_overfitting_suite_baseline_overfits_and_remedies_shrink_the_gap(tmp_path, capsys):
    root = str(tmp_path)
    _run(["run", "--suite", "overfitting", "--results", root], capsys)
    _run(["compare", "--suite", "overfitting", "--results", root, "--no-plots"], capsys)
    table = pd.read_csv(tmp_path / "comparisons" / "overfitting.csv").set_index("experiment")
    assert table.loc["overfit_baseline", "diagnosis"].startswith("overfitting")
    shrunk = table[(table["gap_test_loss_verdict"] == "better") & (table["gap_test_loss_diff_ci95_high"] < 0)]
    assert len(shrunk) >= 3, table["gap_test_loss_verdict"]


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, problem, options",
    [
        ("overfit_baseline", "overfitting", []),
        ("deep_sigmoid", "vanishing gradients", []),
        # On JAX, Keras computes a softmax output's cross-entropy from probabilities clipped away from
        # 0, whose gradient vanishes where a run is confidently wrong; on TensorFlow from the logits.
        # lr_too_high's gradients explode on TensorFlow (5/5 seeds), on JAX on 2/5 (docs/doctor.md).
        ("lr_too_high", "exploding gradients", ["--engine", "per-run", "--backend", "tensorflow"]),
    ],
)
def test_doctor_names_the_problem_and_a_remedy_removes_it(name, problem, options, tmp_path, capsys):
    out = _run(["doctor", name, "--results", str(tmp_path), *options], capsys)
    shown = next(line for line in out.splitlines() if line.startswith(f"{name}: problems per seed: "))
    assert re.search(rf"\b{problem} [345]/5\b", shown), shown  # shown by most of the 5 seeds
    verdicts = pd.read_csv(tmp_path / "comparisons" / f"doctor_{name}.csv")
    removed = verdicts[(verdicts["problem"] == problem) & (verdicts["outcome"] == "removed")]
    assert len(removed) >= 1, verdicts[["remedy", "problem", "outcome"]]
    lower = {"overfitting": True, "vanishing gradients": True, "exploding gradients": False}[problem]
    for _, r in removed.iterrows():
        assert (r["diff_ci95_high"] < 0) if lower else (r["diff_ci95_low"] > 0)


# -- the iris suites (issue 13): well-formed specs, fast ------------------------------------

IRIS_SUITES = {
    "iris_remedies": "iris_article",
    "iris_overfitting": "iris_overfit",
    "iris_underfitting": "iris_underfit",
}
# What each variant's description must name (the change its overrides make).
SAYS = {
    "iris_article": ["iris_baseline unchanged"],
    "iris_l2": ["L2(0.01)", "hidden"],
    "iris_l1": ["L1(0.01)", "hidden"],
    "iris_dropout": ["Dropout(0.2)"],
    "iris_l2_dropout": ["L2(0.01)", "Dropout(0.2)"],
    "iris_article_val": ["validation_size 0.2", "no early stopping"],
    "iris_early_stopping": ["Early stopping", "iris_article_val", "10 epochs", "restore"],
    "iris_overfit_l2": ["L2(0.01)", "each hidden layer"],
    "iris_overfit_dropout": ["Dropout(0.5)", "each hidden layer"],
    "iris_overfit_early_stopping": ["Early stopping", "10 epochs", "restore"],
    "iris_overfit_smaller_model": ["Dense(16", "instead of three Dense(128"],
    "iris_overfit_more_data": ["train_fraction 1.0"],
    "iris_overfit_l2_dropout": ["L2(0.01)", "Dropout(0.5)"],
    "iris_underfit_more_capacity": ["Dense(16)", "instead of Dense(2)"],
    "iris_underfit_more_epochs": ["150 epochs", "instead of 30"],
    "iris_underfit_higher_lr": ["0.1 instead of 0.01"],
    "iris_underfit_adam": ["Adam", "same learning rate 0.01"],
    "iris_underfit_less_regularisation": ["no L2"],
}


def _leaves(value, prefix=""):
    """{dotted path: value} of every leaf of a JSON-like value."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for key, sub in items:
        out.update(_leaves(sub, f"{prefix}.{key}" if prefix else str(key)))
    return out if out else {prefix: value}


def _training(spec):
    return {key: thaw(getattr(spec, key)) for key in ("data", "model", "compile", "fit")}


@pytest.fixture(scope="module")
def specs():
    return registry.discover()


@pytest.mark.parametrize("suite, baseline", IRIS_SUITES.items())
def test_iris_suites_validate_and_name_their_baseline(specs, suite, baseline):
    members = [s for s in specs.values() if suite in s.tags]
    assert baseline in {s.name for s in members}
    assert all("iris" in s.tags and s.data["dataset"] == "iris" for s in members)
    assert all(len(s.seeds) >= 10 and s.description for s in members)
    variants = [s for s in members if s.name != baseline]
    assert len(variants) >= 5
    bases = [s.base for s in variants]
    # compare picks the baseline as the experiment the others name as their base most often
    assert max(set(bases), key=bases.count) == baseline
    assert all(s.seeds == specs[baseline].seeds for s in members)


def test_the_iris_settings_keep_the_articles_pipeline(specs):
    article = specs["iris_baseline"]
    for name in ("iris_overfit", "iris_underfit", "iris_article"):
        spec = specs[name]
        for key in ("dataset", "test_size", "split_seed", "scale"):
            assert spec.data[key] == article.data[key], (name, key)
        assert spec.compile["loss"] == article.compile["loss"]
    assert specs["iris_overfit"].data["resplit"] and specs["iris_underfit"].data["resplit"]
    assert specs["iris_overfit"].data["train_fraction"] < 1 and specs["iris_overfit"].data["validation_size"]
    assert _training(specs["iris_article"]) == _training(article)  # the reference is the article's run


@pytest.mark.parametrize("name", SAYS)
def test_each_iris_variant_differs_from_its_base_only_where_its_overrides_and_description_say(specs, name):
    spec = specs[name]
    base = specs[spec.base]
    mine, theirs = _leaves(_training(spec)), _leaves(_training(base))
    changed = {p for p in mine.keys() | theirs.keys() if mine.get(p, "<absent>") != theirs.get(p, "<absent>")}
    overrides = list(spec.overrides)
    for path in changed:
        assert any(path == o or path.startswith(o + ".") for o in overrides), (name, path, overrides)
    for o in overrides:  # every override changes something
        assert any(p == o or p.startswith(o + ".") for p in changed), (name, o)
    assert bool(changed) == bool(overrides)
    for words in SAYS[name]:
        assert words in spec.description, (name, words, spec.description)
    assert "iris_remedies" not in spec.tags or spec.base in (
        "iris_baseline",
        "iris_article",
        "iris_article_val",
    )


def test_every_iris_variant_is_checked(specs):
    tagged = {s.name for s in specs.values() if set(s.tags) & set(IRIS_SUITES) and s.base}
    assert tagged == set(SAYS)


# -- the iris suites end to end (slow) ------------------------------------------------------


def _table(tmp_path, suite, capsys):
    root = str(tmp_path)
    _run(["run", "--suite", suite, "--results", root], capsys)
    out = _run(["compare", "--suite", suite, "--results", root, "--no-plots"], capsys)
    return pd.read_csv(tmp_path / "comparisons" / f"{suite}.csv").set_index("experiment"), out


def _most(counts, label):
    """How many seeds have `label` in a diagnosis_counts cell ('overfitting:17; good fit:3'), and of how
    many."""
    found = dict(part.rsplit(":", 1) for part in counts.split("; "))
    return int(found.get(label, 0)), sum(int(v) for v in found.values())


@pytest.mark.slow
def test_iris_overfitting_baseline_overfits_and_remedies_close_the_gap_on_this_data_set(tmp_path, capsys):
    table, out = _table(tmp_path, "iris_overfitting", capsys)
    k, n = _most(table.loc["iris_overfit", "diagnosis_counts"], "overfitting")
    assert k * 2 > n, table.loc["iris_overfit", "diagnosis_counts"]
    # on this data set (the splits of iris) at least 4 remedies close the gap, Holm-adjusted; for new data
    # of 27 training samples the corrected interval is reported beside them (docs/remedies-iris.md says why
    # it cannot separate any remedy from 0)
    shrunk = table[(table["gap_test_loss_verdict"] == "better") & (table["gap_test_loss_diff_ci95_high"] < 0)]
    assert len(shrunk) >= 4, out
    assert shrunk["gap_test_loss_diff_new_ci95_low"].notna().all() and "new data of this size" in out
    assert (shrunk["gap_test_loss_verdict_words"] == "better on this data set; not shown for new data").all()
    better_test = shrunk[(shrunk["test_loss_verdict"] == "better") & (shrunk["test_loss_diff_ci95_high"] < 0)]
    assert len(better_test) >= 1, out
    check_recomputed(tmp_path, table)


def check_recomputed(root, table, baseline="iris_overfit"):
    """The comparison's numbers recomputed from runs.csv with scipy alone: both scopes' intervals and
    p-values, Holm's adjustment, the probability of improvement and its Wilson interval; and every mean
    interval inside its metric's range."""
    import math

    import numpy as np
    from scipy import stats as sp

    def runs(name):
        frame = pd.read_csv(root / name / "runs.csv").set_index("seed").sort_index()
        return frame.assign(gap_test_loss=frame["test_loss"] - frame["train_loss"])

    base = runs(baseline)
    variants = [name for name in table.index if name != baseline]
    ratio = table.loc[variants, "diff_overlap_ratio"]
    assert ratio.round(4).tolist() == [round(30 / 27, 4)] * len(variants)  # 30 test, 27 training samples
    versus = {"test_accuracy": False, "test_loss": True, "train_accuracy": False, "gap_test_loss": True}
    for metric, lower in versus.items():
        found = {}
        for name in variants:
            d = (runs(name)[metric] - base[metric]).to_numpy()
            n, m, s = len(d), d.mean(), d.std(ddof=1)
            t = sp.t.ppf(0.975, n - 1)
            for scope, se in (("", s / math.sqrt(n)), ("new_", s * math.sqrt(1 / n + 30 / 27))):
                if se == 0:  # the same on every split (more data's training accuracy): p 1, in the family
                    found.setdefault(scope, []).append((name, 1.0 if m == 0 else 0.0))
                    continue
                p = 2 * sp.t.sf(abs(m) / se, n - 1)
                found.setdefault(scope, []).append((name, p))
                high = min(m + t * se, 1.0) if metric.endswith("accuracy") else m + t * se
                assert table.loc[name, f"{metric}_diff_{scope}ci95_high"] == pytest.approx(high, abs=1e-9)
                assert table.loc[name, f"{metric}_{scope}p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12)
            wins, ties = int(np.sum((d < 0) if lower else (d > 0))), int(np.sum(d == 0))
            z, share = sp.norm.ppf(0.975), (wins + ties / 2) / n
            centre = (share + z * z / (2 * n)) / (1 + z * z / n)
            half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
            row = table.loc[name]
            assert (row[f"{metric}_wins"], row[f"{metric}_ties"]) == (wins, ties)
            assert row[f"{metric}_prob_improvement"] == pytest.approx(share)
            assert row[f"{metric}_prob_improvement_ci95_low"] == pytest.approx(max(0, centre - half))
        for scope, pairs in found.items():  # Holm over the variants, by hand
            ordered = sorted(pairs, key=lambda pair: pair[1])
            running = 0.0
            for i, (name, p) in enumerate(ordered):
                running = max(running, min(1.0, (len(ordered) - i) * p))
                assert table.loc[name, f"{metric}_{scope}p_adjusted"] == pytest.approx(running, rel=1e-6)
    for name in table.index:
        for metric in ("train_accuracy", "test_accuracy", "val_accuracy"):
            for bound in ("ci95_low", "ci95_high", "new_ci95_low", "new_ci95_high"):
                assert 0 <= table.loc[name, f"{metric}_{bound}"] <= 1, (name, metric, bound)
        for metric in ("train_loss", "test_loss", "val_loss"):
            assert table.loc[name, f"{metric}_ci95_low"] > 0 and table.loc[name, f"{metric}_new_ci95_low"] > 0


@pytest.mark.slow
def test_iris_underfitting_baseline_underfits_and_remedies_raise_train_accuracy(tmp_path, capsys):
    table, out = _table(tmp_path, "iris_underfitting", capsys)
    k, n = _most(table.loc["iris_underfit", "diagnosis_counts"], "underfitting")
    assert k * 2 > n, table.loc["iris_underfit", "diagnosis_counts"]
    raised = table[
        (table["train_accuracy_verdict"] == "better") & (table["train_accuracy_diff_ci95_low"] > 0)
    ]
    assert len(raised) >= 3, out
