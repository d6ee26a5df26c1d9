"""harness.export_mlflow and `python -m harness export mlflow`: a small suite of tiny runs into a real
MLflow SQLite store, read back with MlflowClient, exported twice. Runs whenever MLflow is installed.
The runs are stored without training: the export is the point, not the engine."""

import copy
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, run_row, store_results

from harness import cli, export_mlflow, registry

SUITE = [
    {**copy.deepcopy(TINY), "name": "ml_base", "tags": ["mlsuite"], "seeds": 2},
    {  # a new split per seed: its differences have both scopes, this data set and new data
        "name": "ml_wide",
        "base": "ml_base",
        "overrides": {"model.0.units": 12, "data.resplit": True},
        "tags": ["mlsuite"],
    },
]


def _store(exps, root, names):
    """Runs of 2 epochs for each seed (and fold) of the experiments `names`, stored as a run stores them."""
    specs = registry.discover([str(exps)])
    for i, name in enumerate(names):
        spec = specs[name]
        keys = [
            (seed, fold)
            for seed in spec.seeds
            for fold in (range(spec.data["cv"]["folds"]) if spec.data.get("cv") else [None])
        ]
        rows = [
            run_row(
                spec,
                seed,
                fold,
                epochs_run=2,
                best_epoch=2,
                test_accuracy=0.8 + 0.05 * i + 0.01 * k,
                train_loss=0.3 - 0.01 * k,
                backend="tensorflow",
                finished_at=f"2026-12-0{1 + k}T00:00:00+00:00",
            )
            for k, (seed, fold) in enumerate(keys)
        ]
        store_results(root, spec, rows)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The suite stored (2 seeds, 2 epochs each) and exported once with the CLI's defaults."""
    pytest.importorskip("mlflow")
    base = tmp_path_factory.mktemp("mlflow")
    exps = base / "exps"
    exps.mkdir()
    (exps / "ml.py").write_text(f"EXPERIMENTS = {SUITE!r}\n")
    root = base / "results"
    _store(exps, root, ["ml_base", "ml_wide"])
    args = ["--experiments", str(exps), "export", "mlflow", "--suite", "mlsuite", "--results", str(root)]
    assert cli.main(args) == 0
    return {"exps": str(exps), "root": root, "args": args}


def _client(root):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=export_mlflow.default_uri(root))


def _runs(client, kind):
    experiment = client.get_experiment_by_name("harness")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`harness.kind` = '{kind}'")
    return sorted(
        runs, key=lambda r: (r.data.tags["harness.experiment"], r.data.tags.get("harness.seed", ""))
    )


def test_default_store_is_a_sqlite_file_under_results(exported):
    assert (exported["root"] / "mlflow.db").is_file()
    assert (
        export_mlflow.default_uri(exported["root"])
        == f"sqlite:///{(exported['root'] / 'mlflow.db').resolve()}"
    )


def test_one_parent_per_experiment_with_spec_params_interval_metrics_and_verdict_tags(exported):
    client, root = _client(exported["root"]), exported["root"]
    parents = _runs(client, "experiment")
    assert [p.data.tags["harness.experiment"] for p in parents] == ["ml_base", "ml_wide"]
    table = pd.read_csv(root / "comparisons" / "mlsuite.csv", dtype={"spec_hash": str}).set_index(
        "experiment"
    )
    for parent in parents:
        name = parent.data.tags["harness.experiment"]
        spec = json.loads((root / name / "spec.json").read_text())
        row = table.loc[name]
        assert parent.data.tags["harness.spec_hash"] == row["spec_hash"]
        assert parent.info.run_name == name and parent.info.status == "FINISHED"
        params = parent.data.params
        assert params["model.0.units"] == str(spec["model"][0]["units"])
        assert params["fit.epochs"] == "2" and params["data.dataset"] == "iris"
        assert params["compile.optimizer.class_name"] == "adam"
        metrics = parent.data.metrics
        for column in (
            "test_accuracy_mean",
            "test_accuracy_ci95_low",
            "test_accuracy_ci95_high",
            "test_loss_mean",
        ):
            assert metrics[column] == pytest.approx(row[column]), column
        assert metrics["runs"] == 2
        assert parent.data.tags["harness.baseline"] == "ml_base"
        assert parent.data.tags["harness.verdict.test_accuracy"] == row["test_accuracy_verdict_words"]
        assert parent.data.tags["harness.scope"] == row["scope"]
    wide = parents[1]
    assert wide.data.tags["harness.scope"] == "this data set; each seed its own split"
    assert wide.data.tags["harness.scope_new"] == "new data of this size"
    verdicts = table.loc["ml_wide", ["test_accuracy_verdict", "test_accuracy_new_verdict"]]
    tags = wide.data.tags
    assert [tags[f"harness.verdict.test_accuracy.{scope}"] for scope in ("this", "new")] == list(verdicts)
    for column in (  # both scopes' intervals of the difference, and the probability of improvement
        "test_accuracy_diff_ci95_low",
        "test_accuracy_diff_new_ci95_high",
        "gap_test_loss_new_p_adjusted",
        "test_accuracy_prob_improvement",
        "test_accuracy_prob_improvement_ci95_low",
        "test_accuracy_wins",
        "test_accuracy_new_ci95_low",
    ):
        assert wide.data.metrics[column] == pytest.approx(table.loc["ml_wide", column]), column
    assert wide.data.params["base"] == "ml_base"
    assert wide.data.metrics["test_accuracy_diff"] == pytest.approx(
        table.loc["ml_wide", "test_accuracy_diff"]
    )
    assert parents[0].data.tags["harness.verdict.test_accuracy"] == "baseline"
    assert wide.data.metrics["test_accuracy_p_adjusted"] == pytest.approx(
        table.loc["ml_wide", "test_accuracy_p_adjusted"]
    )


def test_one_child_per_seed_with_final_metrics_and_epoch_history(exported):
    client, root = _client(exported["root"]), exported["root"]
    parents = {p.data.tags["harness.experiment"]: p.info.run_id for p in _runs(client, "experiment")}
    children = _runs(client, "seed")
    assert [(c.data.tags["harness.experiment"], c.data.tags["harness.seed"]) for c in children] == [
        ("ml_base", "0"),
        ("ml_base", "1"),
        ("ml_wide", "0"),
        ("ml_wide", "1"),
    ]
    for child in children:
        name, seed = child.data.tags["harness.experiment"], int(child.data.tags["harness.seed"])
        assert child.data.tags["mlflow.parentRunId"] == parents[name]
        assert child.data.params == {"seed": str(seed)}
        run = pd.read_csv(root / name / "runs.csv").set_index("seed").loc[seed]
        assert child.data.metrics["test_accuracy"] == pytest.approx(run["test_accuracy"])
        assert child.data.metrics["train_loss"] == pytest.approx(run["train_loss"])
        assert child.data.tags["harness.backend"] == run["backend"]
        history = pd.read_csv(root / name / "history.csv").query("seed == @seed").sort_values("epoch")
        logged = sorted(client.get_metric_history(child.info.run_id, "loss"), key=lambda m: m.step)
        assert [m.step for m in logged] == list(history["epoch"]) == [1, 2]
        assert [m.value for m in logged] == pytest.approx(list(history["loss"]))
        assert child.info.status == "FINISHED"


def test_parent_artifacts(exported):
    client = _client(exported["root"])
    for parent in _runs(client, "experiment"):
        names = sorted(a.path for a in client.list_artifacts(parent.info.run_id))
        assert names == ["curves.png", "mlsuite.html", "spec.json"]
        local = client.download_artifacts(parent.info.run_id, "spec.json")
        assert json.loads(Path(local).read_text())["name"] == parent.data.tags["harness.experiment"]


def test_exporting_again_updates_and_never_duplicates(exported, capsys):
    client, root = _client(exported["root"]), exported["root"]
    before = {r.info.run_id for r in _runs(client, "experiment") + _runs(client, "seed")}
    child = _runs(client, "seed")[0]
    steps_before = len(client.get_metric_history(child.info.run_id, "loss"))
    assert cli.main(exported["args"]) == 0
    assert "0 new, 0 replaced" in capsys.readouterr().err
    after = {r.info.run_id for r in _runs(client, "experiment") + _runs(client, "seed")}
    assert after == before and len(after) == 6
    assert len(client.get_metric_history(child.info.run_id, "loss")) == steps_before == 2
    parent = _runs(client, "experiment")[0]
    assert len(client.get_metric_history(parent.info.run_id, "test_accuracy_mean")) == 1
    # a seed run again (a new finished_at): its child run is replaced, not added to
    runs_csv = root / "ml_wide" / "runs.csv"
    runs = pd.read_csv(runs_csv, dtype={"spec_hash": str})
    runs.loc[runs["seed"] == 1, "finished_at"] = "2030-01-01T00:00:00+00:00"
    runs.to_csv(runs_csv, index=False)
    assert cli.main(exported["args"]) == 0
    assert "1 new, 1 replaced" in capsys.readouterr().err
    seeds = [(c.data.tags["harness.experiment"], c.data.tags["harness.seed"]) for c in _runs(client, "seed")]
    assert seeds == [("ml_base", "0"), ("ml_base", "1"), ("ml_wide", "0"), ("ml_wide", "1")]
    assert len(_runs(client, "experiment")) == 2


CV_SUITE = [
    {**copy.deepcopy(TINY), "name": "ml_cv", "tags": ["mlcv"], "seeds": 2, "data": {"cv": {"folds": 2}}}
]


def test_a_cv_experiment_exports_one_child_per_seed_and_fold_and_never_duplicates(tmp_path, capsys):
    pytest.importorskip("mlflow")
    exps, root = tmp_path / "exps", tmp_path / "results"
    exps.mkdir()
    (exps / "mlcv.py").write_text(f"EXPERIMENTS = {CV_SUITE!r}\n")
    _store(exps, root, ["ml_cv"])
    args = ["--experiments", str(exps), "export", "mlflow", "--suite", "mlcv", "--results", str(root)]
    assert cli.main(args) == 0
    assert "1 experiment run(s) with 4 seed/fold run(s)" in capsys.readouterr().err
    client = _client(root)
    key = lambda c: (int(c.data.tags["harness.seed"]), int(c.data.tags["harness.fold"]))  # noqa: E731
    children = sorted(_runs(client, "seed"), key=key)
    assert [key(c) for c in children] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    runs = pd.read_csv(root / "ml_cv" / "runs.csv").set_index(["seed", "fold"])
    history = pd.read_csv(root / "ml_cv" / "history.csv")
    for child in children:
        seed, fold = key(child)
        assert child.data.params == {"seed": str(seed), "fold": str(fold)}
        assert child.info.run_name == f"ml_cv seed {seed} fold {fold}"
        assert child.data.metrics["test_accuracy"] == pytest.approx(runs.loc[(seed, fold), "test_accuracy"])
        assert "fold" not in child.data.metrics  # a key, not a per-epoch number
        mine = history.query("seed == @seed and fold == @fold").sort_values("epoch")
        logged = sorted(client.get_metric_history(child.info.run_id, "loss"), key=lambda m: m.step)
        assert [m.step for m in logged] == list(mine["epoch"]) == [1, 2]
        assert [m.value for m in logged] == pytest.approx(list(mine["loss"]))
    ids = {c.info.run_id for c in children}
    assert cli.main(args) == 0
    assert "0 new, 0 replaced" in capsys.readouterr().err
    assert {c.info.run_id for c in _runs(client, "seed")} == ids
    # one (seed, fold) made again: its child alone is replaced
    table = pd.read_csv(root / "ml_cv" / "runs.csv", dtype={"spec_hash": str})
    table.loc[(table["seed"] == 1) & (table["fold"] == 0), "finished_at"] = "2030-01-01T00:00:00+00:00"
    table.to_csv(root / "ml_cv" / "runs.csv", index=False)
    assert cli.main(args) == 0
    assert "1 new, 1 replaced" in capsys.readouterr().err
    after = sorted(_runs(client, "seed"), key=key)
    assert [key(c) for c in after] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert len({c.info.run_id for c in after} & ids) == 3 and len(_runs(client, "experiment")) == 1


def test_without_mlflow_exit_2_with_the_pip_command(exported, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    assert cli.main(exported["args"]) == 2
    err = capsys.readouterr().err
    assert (
        "error: export mlflow needs MLflow, an optional extra; install it: pip install -e '.[mlflow]'" in err
    )


def test_without_mlflow_even_when_nothing_is_exported(tmp_path, monkeypatch, capsys):
    """The missing extra is the message, whatever else is wrong (runs absent): no need for MLflow
    installed."""
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert cli.main(["export", "mlflow", "iris_baseline", "--results", str(tmp_path)]) == 2
    assert "pip install -e '.[mlflow]'" in capsys.readouterr().err
