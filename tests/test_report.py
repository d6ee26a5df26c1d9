"""harness.report and `python -m harness report`, on hand-written results; the page is opened in a real
headless Chromium (Debian's, driven by Playwright) when one is installed."""

import math
import re
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from harness import cli, registry, report

EXPERIMENTS = textwrap.dedent("""
    EXPERIMENTS = [
        {"name": "rp_base", "data": {"validation_size": 0.2},
         "model": [{"class_name": "Dense", "units": 8, "activation": "relu"},
                   {"class_name": "Dense", "units": 3, "activation": "softmax"}],
         "seeds": 4, "tags": ["rp"]},
        {"name": "rp_wide", "base": "rp_base",
         "overrides": {"model.0.units": 32, "fit.epochs": 40, "data.resplit": True}, "tags": ["rp"]},
        {"name": "rp_same", "base": "rp_base", "overrides": {"fit.batch_size": 16}, "tags": ["rp"]},
    ]
""")
BASE_ACC = [0.80, 0.84, 0.78, 0.82]
SHIFTS = {"rp_base": [0, 0, 0, 0], "rp_wide": [0.05, 0.06, 0.04, 0.05], "rp_same": [0.03, -0.01, 0.02, -0.01]}
VERSIONS = {
    "backend": "tensorflow",
    "keras_version": "3.15.1",
    "backend_version": "2.21.0",
    "python_version": "3.11.7",
    "numpy_version": "2.4.6",
    "sklearn_version": "1.9.1",
    "pipeline": "tf.data+steps_per_execution=8",
    "deterministic": True,
}


def _write(root, spec, epochs=6):
    folder = Path(root) / spec.name
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(spec.to_json())
    rows, history = [], []
    for seed, (acc, shift) in enumerate(zip(BASE_ACC, SHIFTS[spec.name])):
        rows.append(
            {
                "experiment": spec.name,
                "seed": seed,
                "spec_hash": spec.hash,
                "status": "ok",
                "error": "",
                "epochs_run": epochs,
                "best_epoch": epochs - 1,
                "train_loss": 0.2 - shift,
                "train_accuracy": 0.95,
                "val_loss": 0.3,
                "val_accuracy": 0.9,
                "test_loss": 0.35 - shift / 2,
                "test_accuracy": acc + shift,
                "fit_seconds": 1.2 + seed / 10,
                **VERSIONS,
                "finished_at": f"2026-11-29T07:0{seed}:00+00:00",
            }
        )
        history += [
            {
                "experiment": spec.name,
                "seed": seed,
                "spec_hash": spec.hash,
                "epoch": e,
                "loss": 1.0 / e + seed / 50,
                "accuracy": 0.5 + e / 20,
                "val_loss": 1.1 / e + seed / 40,
                "val_accuracy": 0.45 + e / 20,
            }
            for e in range(1, epochs + 1)
        ]
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(history).to_csv(folder / "history.csv", index=False)


@pytest.fixture
def stored(tmp_path):
    exps = tmp_path / "exps"
    exps.mkdir()
    (exps / "rp.py").write_text(EXPERIMENTS)
    specs = registry.discover([str(exps)])
    root = tmp_path / "results"
    for name in ("rp_base", "rp_wide", "rp_same"):
        _write(root, specs[name])
    return {"exps": str(exps), "root": str(root)}


def _report(stored, capsys, *extra):
    code = cli.main(
        ["--experiments", stored["exps"], "report", "--suite", "rp", "--results", stored["root"], *extra]
    )
    assert code == 0
    return capsys.readouterr()


def test_report_command_writes_one_page_and_the_csv(stored, capsys):
    printed = _report(stored, capsys)
    page = Path(stored["root"]) / "reports" / "rp.html"
    csv = Path(stored["root"]) / "comparisons" / "rp.csv"
    assert printed.out == ""  # no table on stdout: the page is the output
    assert f"wrote:\n  {page}\n  {csv}" in printed.err
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # self-contained: no script, no external resource of any kind
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
    assert "<style>" in text
    # the verdicts in words, the variant's changes, what ran it
    assert "test accuracy higher by 0.0500" in text and "better than the baseline" in text
    assert "no evidence of a difference" in text
    assert "About 72 paired runs would settle a difference of this size." in text
    assert "<th>p Holm</th>" in text and "<th>runs needed</th>" in text and "<th>p raw</th>" in text
    assert "<code>model.0.units</code></td><td>8</td><td>32</td>" in text
    assert "<code>fit.epochs</code></td><td>100</td><td>40</td>" in text
    assert "tf.data+steps_per_execution=8" in text and "3.15.1" in text
    assert text.count('class="curve"') == 6  # loss and accuracy for each of three experiments


def test_quiet_report_prints_nothing(stored, capsys):
    printed = _report(stored, capsys, "-q")
    assert printed.out == "" and "wrote:" not in printed.err
    assert (Path(stored["root"]) / "reports" / "rp.html").exists()


def test_compare_says_where_the_report_would_go(stored, capsys):
    args = [
        "--experiments",
        stored["exps"],
        "compare",
        "--suite",
        "rp",
        "--results",
        stored["root"],
        "--no-plots",
    ]
    assert cli.main(args) == 0
    printed = capsys.readouterr()
    page = Path(stored["root"]) / "reports" / "rp.html"
    line = f"report: `python -m harness report --suite rp --results {stored['root']}` writes {page}"
    assert line in printed.err.splitlines()
    assert "report:" not in printed.out
    assert not page.exists()  # compare only says where
    assert cli.main([*args, "-q"]) == 0
    assert "report:" not in capsys.readouterr().err


def test_verdict_words():
    row = {
        "test_accuracy_diff": -0.03,
        "test_accuracy_diff_ci95_low": -0.05,
        "test_accuracy_diff_ci95_high": -0.01,
        "test_accuracy_verdict": "worse",
        "paired_seeds": 5,
    }
    assert report.verdict_words(row, "test_accuracy", False) == (
        "test accuracy lower by 0.0300 (95% CI of the difference -0.0500 to -0.0100 over 5 paired seeds): "
        "worse than the baseline."
    )
    row.update(test_accuracy_diff_ci95_low=math.nan, test_accuracy_diff_ci95_high=math.nan, paired_seeds=1)
    assert report.verdict_words(row, "test_accuracy", False).endswith(
        "too few seeds for an interval, no evidence either way."
    )


def test_verdict_words_follow_holm_and_name_the_runs_needed():
    """A CI that excludes 0 with 'no evidence': the adjustment decided it, and the sentence says so."""
    row = {
        "test_accuracy_diff": 0.02,
        "test_accuracy_diff_ci95_low": 0.004,
        "test_accuracy_diff_ci95_high": 0.036,
        "test_accuracy_p_value": 0.03,
        "test_accuracy_p_adjusted": 0.09,
        "test_accuracy_verdict": "no evidence",
        "test_accuracy_runs_needed": 14,
        "paired_seeds": 6,
        "interval": "corrected t (n_test/n_train 0.25); seeds x 5-fold x 1 repeats",
    }
    assert report.verdict_words(row, "test_accuracy", False) == (
        "test accuracy higher by 0.0200 (95% CI of the difference +0.0040 to +0.0360 over 6 paired "
        "(seed, fold) runs), but adjusted for the variants compared (Holm) p is 0.0900 ≥ 0.05: no evidence "
        "of a difference. About 14 paired runs would settle a difference of this size."
    )
    row.update(
        test_accuracy_p_adjusted=0.004, test_accuracy_verdict="better", test_accuracy_runs_needed=math.nan
    )
    assert report.verdict_words(row, "test_accuracy", False) == (
        "test accuracy higher by 0.0200 (95% CI of the difference +0.0040 to +0.0360 over 6 paired "
        "(seed, fold) runs; p Holm 0.0040): better than the baseline."
    )


def test_delta_interval_names_the_test_of_the_differences():
    assert report.delta_interval("paired t; seeds (init+shuffle), fixed split") == "paired t"
    assert (
        report.delta_interval("corrected t (n_test/n_train 0.25); seeds x 5-fold x 2 repeats")
        == "corrected t (n_test/n_train 0.25)"
    )
    # a fixed-split variant of a resplit baseline: its own interval is paired t, its Δ's corrected
    label = "paired t; seeds (init+shuffle), fixed split; Δ corrected (n_test/n_train 0.31)"
    assert report.delta_interval(label) == "corrected t (n_test/n_train 0.31)"


def test_spec_changes_lists_fields_that_differ():
    base = {"data": {"dataset": "iris"}, "model": [{"units": 4}], "compile": {}, "fit": {"epochs": 5}}
    mine = {
        "data": {"dataset": "iris"},
        "model": [{"units": 4}, {"rate": 0.5}],
        "compile": {},
        "fit": {"epochs": 9},
    }
    changes = report.spec_changes(mine, base)
    assert [p for p, _, _ in changes] == ["fit.epochs", "model.1.rate"]
    assert changes[0] == ("fit.epochs", 5, 9)
    assert changes[1][2] == 0.5 and report._json(changes[1][1]) == "(absent)"  # a layer the base lacks


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no chromium installed (Debian: apt-get install chromium)")
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="Playwright drives Chromium: pip install playwright"
    )
    return path, playwright


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_report_in_a_real_browser(stored, capsys, tmp_path):
    executable, playwright = _chromium()
    _report(stored, capsys)
    page_path = Path(stored["root"]) / "reports" / "rp.html"
    frame = pd.read_csv(Path(stored["root"]) / "comparisons" / "rp.csv").set_index("experiment")
    problems, requests = [], []
    with playwright.sync_playwright() as p:
        # generous timeouts: a loaded CI machine starts Chromium slowly (no timing is asserted)
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=180_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            charts = page.evaluate(
                """() => [...document.querySelectorAll('svg')].map(s => {
                    const r = s.getBoundingClientRect();
                    return {cls: s.getAttribute('class'), w: r.width, h: r.height,
                            marks: s.querySelectorAll('circle,rect,polyline,polygon').length};
                })"""
            )
            images = page.evaluate(
                "() => [...document.images].map(i => "
                "({src: i.src, w: i.naturalWidth, h: i.naturalHeight, done: i.complete}))"
            )
            cells = page.evaluate(
                """() => [...document.querySelectorAll('[data-column]')].map(c =>
                    ({experiment: c.dataset.experiment, column: c.dataset.column,
                      text: c.textContent.trim()}))"""
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert requests == [page_path.as_uri()]  # the page alone: nothing else was fetched
    # every chart drawn: 3 experiments × 2 curves, and the interval bars of both tables
    assert sum(c["cls"] == "curve" for c in charts) == 6
    assert sum(c["cls"] == "bar" for c in charts) == 3 * 4 + 2 * 4
    assert all(c["w"] > 0 and c["h"] > 0 and c["marks"] > 0 for c in charts), charts
    assert all(i["done"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    # every number and interval label shown is the comparisons CSV's, to the digits shown:
    # per experiment n, interval, 5 means, 4 intervals, epochs; per (variant, metric) pairs, Δ, its
    # interval's bounds and test, p Holm, runs needed, raw p
    assert len(cells) == 3 * (1 + 1 + 1 + 4 * 3 + 1) + 2 * 4 * 8
    tests = {}
    for cell in cells:
        value = frame.loc[cell["experiment"], cell["column"]]
        if cell["column"] == "interval":  # the CSV's label, or (differences) the test it names for Δ
            assert cell["text"] in (value, report.delta_interval(value)), cell
            if cell["text"] != value:
                tests.setdefault(cell["experiment"], set()).add(cell["text"])
            continue
        if cell["column"].endswith("_runs_needed"):
            verdict = frame.loc[cell["experiment"], cell["column"].replace("runs_needed", "verdict")]
            if cell["text"] == "—":
                assert math.isnan(value) and verdict != "no evidence", cell
            elif cell["text"] == "∞":
                assert value == math.inf and verdict == "no evidence", cell
            else:
                assert int(cell["text"]) == value and verdict == "no evidence", cell
            continue
        digits = len(cell["text"].split(".")[1]) if "." in cell["text"] else 0
        if cell["text"] == "n/a":
            assert not math.isfinite(value), cell
        else:
            assert float(cell["text"]) == pytest.approx(value, abs=0.51 * 10**-digits), cell
    # rp_wide resplits (corrected t on both sides of its Δ); rp_same runs on the fixed split
    assert tests == {"rp_wide": {"corrected t (n_test/n_train 0.31)"}, "rp_same": {"paired t"}}
    shown = {(c["experiment"], c["column"]): c["text"] for c in cells}
    assert ("rp_wide", "test_accuracy_diff") in shown and ("rp_base", "test_accuracy_mean") in shown
    # the verdict rests on the adjusted p, shown beside the raw one, which differs here
    assert shown[("rp_wide", "test_accuracy_p_adjusted")] != shown[("rp_wide", "test_accuracy_p_value")]
    assert {shown[("rp_same", f"{m}_runs_needed")] for m in ("test_accuracy", "train_accuracy")} == {
        "72",
        "∞",
    }
    assert shown[("rp_wide", "test_accuracy_runs_needed")] == "—"
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_a_search_report_ranks_its_trials(tmp_path):
    from test_compare import run_row, write_experiment

    exps = tmp_path / "exps"
    exps.mkdir()
    (exps / "grid.py").write_text(
        'EXPERIMENTS = [{"name": "g", "data": {"validation_size": 0.2}, "seeds": 3,'
        ' "model": [{"class_name": "Dense", "units": 3, "activation": "softmax"}],'
        ' "search": {"grid": {"fit.epochs": [5, 10]}}}]\n'
    )
    specs = registry.discover([str(exps)])
    root = tmp_path / "results"
    for name, accs in {"g[epochs=5]": [0.70, 0.72, 0.71], "g[epochs=10]": [0.90, 0.92, 0.91]}.items():
        write_experiment(
            root, specs[name], [dict(run_row(specs[name], s, a), val_accuracy=a) for s, a in enumerate(accs)]
        )
    assert cli.main(["--experiments", str(exps), "-q", "report", "g", "--results", str(root)]) == 0
    text = (root / "reports" / "g.html").read_text()
    first, second = text.index("<td>g[epochs=10] (baseline)</td>"), text.index("<td>g[epochs=5]</td>")
    assert first < second and '<td class="num">1</td>' in text[first - 40 : first]
    # a trial's base (the search) is never stored: its overrides as written
    assert "<code>fit.epochs</code></td><td>(base not stored)</td><td>5</td>" in text


def test_a_cv_report_pairs_by_seed_and_fold_with_corrected_intervals(tmp_path):
    from test_compare import run_row

    exps = tmp_path / "exps"
    exps.mkdir()
    (exps / "cv.py").write_text(
        'EXPERIMENTS = [{"name": "k", "data": {"cv": {"folds": 3}}, "seeds": 2, "tags": ["kcv"],'
        ' "model": [{"class_name": "Dense", "units": 3, "activation": "softmax"}]},'
        ' {"name": "k2", "base": "k", "overrides": {"fit.epochs": 50}, "tags": ["kcv"]}]\n'
    )
    specs = registry.discover([str(exps)])
    root = tmp_path / "results"
    for name, shift in (("k", 0.0), ("k2", 0.01)):
        spec, folder = specs[name], root / name
        folder.mkdir(parents=True)
        (folder / "spec.json").write_text(spec.to_json())
        keys = [(seed, fold) for seed in (0, 1) for fold in range(3)]
        rows = [
            {**run_row(spec, seed, 0.8 + fold / 50 + shift * (1 + seed)), "fold": fold} for seed, fold in keys
        ]
        pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
        history = [
            {"experiment": name, "seed": s, "fold": f, "spec_hash": spec.hash, "epoch": e, "loss": 1 / e}
            for s, f in keys
            for e in (1, 2)
        ]
        pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
    assert (
        cli.main(["--experiments", str(exps), "-q", "report", "--suite", "kcv", "--results", str(root)]) == 0
    )
    text = (root / "reports" / "kcv.html").read_text()
    label = pd.read_csv(root / "comparisons" / "kcv.csv").set_index("experiment").loc["k2", "interval"]
    assert label.startswith("corrected t (n_test/n_train ") and "x 3-fold x 1 repeats" in label
    assert f'data-column="interval" title="{label}">{label.split(";")[0]}</td>' in text
    assert "paired by (seed, fold)" in text and "over 6 paired (seed, fold) runs" in text
    assert "<td>0 1 x 3 folds</td>" in text  # what ran it: the seeds, each on 3 folds
    assert "mean over the 6 (seed, fold) run(s) still running" in text
