"""harness.report and `python -m harness report`, on hand-written results; the page is opened in a real
headless Chromium (Debian's, driven by Playwright) when one is installed."""

import math
import re
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import history_rows, run_row, store_results

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
    rows = [
        run_row(
            spec,
            seed,
            epochs_run=epochs,
            best_epoch=epochs - 1,
            train_loss=0.2 - shift,
            val_loss=0.3,
            test_loss=0.35 - shift / 2,
            test_accuracy=acc + shift,
            fit_seconds=1.2 + seed / 10,
            **VERSIONS,
            finished_at=f"2026-11-29T07:0{seed}:00+00:00",
        )
        for seed, (acc, shift) in enumerate(zip(BASE_ACC, SHIFTS[spec.name]))
    ]
    curves = lambda seed: {  # noqa: E731
        "loss": lambda e: 1.0 / e + seed / 50,
        "accuracy": lambda e: 0.5 + e / 20,
        "val_loss": lambda e: 1.1 / e + seed / 40,
        "val_accuracy": lambda e: 0.45 + e / 20,
    }
    store_results(root, spec, rows, [h for r in rows for h in history_rows(r, **curves(r["seed"]))])


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
    # the headline, the intervals said once, the verdict table, the variant's changes, what ran it
    assert "<p class='headline'>Against rp_base (2 variants, 4 " in text
    assert text.count("Nadeau and Bengio&#x27;s corrected resampled t (n_test/n_train 0.31)") == 1
    assert "Δ corrected" not in text and '<table id="verdicts">' in text
    assert '<th colspan="2">test accuracy</th>' in text and "<th>this data set / this split</th>" in text
    assert '<span class="mark better">●</span> <span class="better">better</span>' in text
    assert '<span class="mark none">○</span> <span class="none">not shown</span>' in text
    assert "<th>p Holm</th>" in text and "<th>runs needed</th>" in text and "<th>improved on</th>" in text
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


def test_a_verdict_is_a_coloured_mark_and_a_word():
    assert report._mark("better") == '<span class="mark better">●</span> <span class="better">better</span>'
    assert report._mark("worse").startswith('<span class="mark worse">●</span>')
    none = '<span class="mark none">○</span> <span class="none">no evidence</span>'
    assert report._mark("no evidence") == none
    assert report._mark("no evidence", new=True).endswith('<span class="none">not shown</span>')


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
            page.locator("#verdicts").screenshot(path=str(tmp_path / "verdicts.png"))
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            marks = page.evaluate(
                """() => [...document.querySelectorAll('#verdicts .mark')].map(m =>
                    ({cls: m.className, color: getComputedStyle(m).color}))"""
            )
        finally:
            browser.close()
    assert problems == []
    assert requests == [page_path.as_uri()]  # the page alone: nothing else was fetched
    # every chart drawn: 3 experiments × 2 curves, the interval bars of both tables
    assert sum(c["cls"] == "curve" for c in charts) == 6
    assert sum(c["cls"] == "bar" for c in charts) == 3 * 4 + 2 * 4
    assert all(c["w"] > 0 and c["h"] > 0 and c["marks"] > 0 for c in charts), charts
    assert all(i["done"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    # the verdict table: a mark per (variant, metric, scope): rp_wide resplits (two scopes), rp_same not
    assert len(marks) == 4 * 2 + 4
    colours = {m["cls"].split()[-1]: m["color"] for m in marks}
    assert colours.get("better") == "rgb(27, 94, 32)" and colours.get("none") == "rgb(97, 97, 97)"
    # every number shown is the comparisons CSV's, to the digits shown. Per experiment: n, the scope
    # (the suite mixes fixed and resplit), 4 means with their interval, train accuracy, epochs, and for
    # rp_wide (its own split varies) the new-data interval of 3 metrics. Per (variant, metric): the
    # verdict per scope; Δ, its interval, p Holm, runs needed (and the new scope's for rp_wide); the
    # probability of improvement with its interval.
    experiments = 3 * (1 + 1 + 4 * 3 + 1 + 1) + 3 * 2
    verdicts = 4 * 2 + 4
    differences = 4 * (1 + 2 + 1 + 1 + 3) + 4 * (1 + 2 + 1 + 1 + 4 + 3)
    assert len(cells) == experiments + verdicts + differences
    for cell in cells:
        value = frame.loc[cell["experiment"], cell["column"]]
        if cell["column"] == "scope":
            assert cell["text"] == value
        elif cell["column"].endswith("_verdict"):
            word = "not shown" if cell["column"].endswith("new_verdict") and value == "no evidence" else value
            assert cell["text"].startswith(("●", "○")) and word in cell["text"], cell
        elif cell["column"].endswith("_runs_needed"):
            verdict = frame.loc[cell["experiment"], cell["column"].replace("runs_needed", "verdict")]
            if cell["text"] == "-":
                assert math.isnan(value) and verdict != "no evidence", cell
            elif cell["text"] == "never":
                assert value == math.inf and verdict == "no evidence", cell
            else:
                assert int(cell["text"]) == value and verdict == "no evidence", cell
        elif cell["text"] == "<0.0001":
            assert value < 0.0001 and "p_" in cell["column"], cell
        elif cell["text"] == "n/a":
            assert not math.isfinite(value), cell
        else:
            digits = len(cell["text"].split(".")[1]) if "." in cell["text"] else 0
            assert float(cell["text"]) == pytest.approx(value, abs=0.51 * 10**-digits), cell
    shown = {(c["experiment"], c["column"]): c["text"] for c in cells}
    assert ("rp_wide", "test_accuracy_diff_new_ci95_low") in shown
    assert ("rp_same", "test_accuracy_diff_new_ci95_low") not in shown  # two fixed splits: one scope
    assert shown[("rp_wide", "test_accuracy_runs_needed")] == "-"
    assert (tmp_path / "verdicts.png").stat().st_size > 5_000
    assert (tmp_path / "report.png").stat().st_size > 10_000
