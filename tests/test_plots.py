"""harness.plots: early-stopped seeds leave the mean, and the PNG files are written."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from harness import plots

PNG = b"\x89PNG\r\n\x1a\n"


def seed_history(seed, epochs, offset=0.0, validation=True):
    epoch = np.arange(1, epochs + 1)
    frame = pd.DataFrame(
        {"seed": seed, "epoch": epoch, "loss": 1.0 / epoch + offset, "accuracy": 0.5 + 0.04 * epoch}
    )
    if validation:
        frame["val_loss"] = 1.2 / epoch + offset
        frame["val_accuracy"] = 0.45 + 0.04 * epoch
    return frame


@pytest.fixture
def ragged():
    """Three seeds stopped after 10, 6 and 4 epochs (as early stopping leaves them)."""
    return pd.concat(
        [seed_history(0, 10, 0.0), seed_history(1, 6, 0.3), seed_history(2, 4, 0.6)], ignore_index=True
    )


def test_mean_is_over_the_seeds_still_running(ragged):
    table = plots.epoch_stats(ragged, "loss").set_index("epoch")
    assert table.loc[3, "running"] == 3 and table.loc[3, "mean"] == pytest.approx(
        1 / 3 + 0.3
    )  # offsets 0, .3, .6
    assert table.loc[5, "running"] == 2 and table.loc[5, "mean"] == pytest.approx(1 / 5 + 0.15)
    assert table.loc[8, "running"] == 1 and table.loc[8, "mean"] == pytest.approx(
        1 / 8
    )  # seed 0 alone, not dragged up
    assert table.loc[5, "min"] == pytest.approx(0.2) and table.loc[5, "max"] == pytest.approx(0.5)
    assert list(table.index) == list(range(1, 11))


def test_stopped_early(ragged):
    stops = plots.stopped_early(ragged)
    assert stops.to_dict("list") == {"seed": [1, 2], "last_epoch": [6, 4]}
    assert plots.stopped_early(seed_history(0, 5)).empty


def test_curves_png_with_early_stopped_seeds(ragged, tmp_path):
    path = plots.curves(ragged, tmp_path / "exp" / "curves.png", title="exp")
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed away


def test_curves_png_without_validation_or_history(tmp_path):
    no_val = pd.concat([seed_history(s, 8, validation=False) for s in range(3)])
    assert plots.curves(no_val, tmp_path / "a.png").stat().st_size > 5000
    assert (
        plots.curves(pd.DataFrame(columns=["seed", "epoch", "loss"]), tmp_path / "b.png").read_bytes()[:8]
        == PNG
    )


def test_comparison_png(ragged, tmp_path):
    frame = pd.DataFrame(
        {
            "experiment": ["base", "variant", "single"],
            "test_accuracy_mean": [0.90, 0.93, 0.95],
            "test_accuracy_ci95_low": [0.88, 0.90, float("nan")],  # one seed: no interval
            "test_accuracy_ci95_high": [0.92, 0.96, float("nan")],
        }
    )
    histories = {
        "base": ragged,
        "variant": pd.concat([seed_history(s, 12, validation=False) for s in range(2)]),
        "single": seed_history(0, 5),
    }
    path = plots.comparison(histories, frame, "base", tmp_path / "comparisons" / "x.png")
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_drawing_needs_no_pyplot_or_display(tmp_path):
    code = (
        "import sys, pandas as pd; from harness import plots; "
        "plots.curves(pd.DataFrame({'seed': 0, 'epoch': [1, 2], 'loss': [1.0, 0.5]}), sys.argv[1]); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c.png")],
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": "", "MPLBACKEND": ""},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False" and (tmp_path / "c.png").read_bytes()[:8] == PNG


def test_png_files_are_ordinary_files(ragged, tmp_path):
    import stat

    umask = os.umask(0)
    os.umask(umask)
    path = plots.curves(ragged, tmp_path / "exp" / "curves.png", title="exp")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
