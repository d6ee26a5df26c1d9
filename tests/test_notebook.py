"""docs/notebook.ipynb, executed headless in a real Jupyter kernel (nbclient, ipykernel): it trains an
experiment given as a dict and a variant, compares them and writes the report, and each cell shows what
the stored results hold. The kernel works in a temporary folder, so its results go there."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

import harness

nbclient = pytest.importorskip(
    "nbclient", reason="the notebook test needs the notebook extra: pip install -e '.[notebook]'"
)

# a kernel, JAX and a compile: slow, so `.ci/run` runs this module by name besides the default suite
pytestmark = pytest.mark.slow
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"
SHOWN = ["experiment", "seed", "status", "test_accuracy", "pipeline"]


def shown(frame):
    """A frame's text as a kernel shows it: pandas' defaults away from a terminal (20 columns, 80 wide)."""
    with pd.option_context("display.max_columns", 20, "display.width", 80):
        return repr(frame)


def outputs(cell):
    """(stdout, stderr, the value's text/plain) of an executed cell."""
    streams = {"stdout": "", "stderr": ""}
    value = None
    for out in cell.outputs:
        assert out.output_type != "error", "".join(out.get("traceback", []))
        if out.output_type == "stream":
            streams[out.name] += out.text
        elif out.output_type == "execute_result":
            value = out.data["text/plain"]
    return streams["stdout"], streams["stderr"], value


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """(code cells' outputs, the kernel's working folder) once the notebook ran top to bottom."""
    import nbformat

    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:  # the outputs checked are this execution's, not the ones saved with it
        if cell.cell_type == "code":
            cell.outputs = []
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_EXPERIMENTS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=env)  # raises CellExecutionError, with the cell's traceback, if a cell fails
    return [outputs(c) for c in notebook.cells if c.cell_type == "code"], folder


def test_the_first_cell_trained_a_dict_on_the_vectorized_engine(executed):
    cells, folder = executed
    _, progress, value = cells[0]
    assert "10 runs to do" in progress and "[10/10] nb_tiny seed 9  test_accuracy" in progress
    runs = harness.load("nb_tiny", results=folder / "results").runs
    assert list(runs["seed"]) == list(range(10)) and set(runs["status"]) == {"ok"}
    assert all(p.startswith("jax.vmap group of") for p in runs["pipeline"])  # engine="auto" by default
    assert value == shown(runs[SHOWN])  # the returned rows are the stored ones


def test_the_variant_is_its_base_with_a_wider_hidden_layer(executed):
    cells, folder = executed
    tiny, wide = (harness.load(n, results=folder / "results") for n in ("nb_tiny", "nb_wide"))
    assert wide.spec["base"] == "nb_tiny" and wide.spec["model"][0]["units"] == 32
    assert tiny.spec["model"][0]["units"] == 4 and wide.spec_hash != tiny.spec_hash
    assert cells[1][2] == shown(wide.runs[SHOWN]) and list(wide.runs["seed"]) == list(range(10))


def test_the_comparison_cells_show_the_comparison_of_the_stored_runs(executed):
    cells, folder = executed
    result = harness.compare(["nb_tiny", "nb_wide"], results=folder / "results")
    assert result.baseline == "nb_tiny"
    assert list(result.summary["experiment"]) == ["nb_tiny", "nb_wide"]
    assert list(result.summary["runs"]) == [10, 10]
    assert set(result.differences["pairs"]) == {10}
    assert set(result.differences["verdict"]) <= {"better", "worse", "no evidence"}
    assert cells[2][2] == shown(result.summary)
    assert cells[3][2] == shown(result.differences)
    printed = cells[4][0]
    assert printed == result.text() + "\n"
    assert re.search(r"^nb_tiny \*\s+10\s", printed, flags=re.M)  # the baseline, marked, over 10 seeds


def test_the_last_cell_wrote_the_report_page_and_its_csv(executed):
    cells, folder = executed
    assert cells[5][2] == repr(Path("results/reports/nb_tiny+nb_wide.html"))
    page = (folder / "results" / "reports" / "nb_tiny+nb_wide.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "nb_wide" in page
    table = pd.read_csv(folder / "results" / "comparisons" / "nb_tiny+nb_wide.csv")
    assert list(table["experiment"]) == ["nb_tiny", "nb_wide"]
