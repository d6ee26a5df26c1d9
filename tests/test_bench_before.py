"""harness.bench: the engine before is measured in the same run, from a tree exported with git (or
the row says why not). For the lead: these may join tests/test_bench.py."""

import math
import shutil

import pytest

from harness import bench


def test_an_unknown_commit_is_said_not_guessed():
    with bench.exported("no-such-ref-0123") as (tree, why):
        assert tree is None and "no-such-ref-0123" in why
    row = bench._versus_before(
        "suite_vs_before", "overfitting suite", {"now": [10.0]}, {}, ("no-such-ref-0123", None, why), "load"
    )
    assert math.isnan(row["reference_value"]) and math.isnan(row["ratio"])
    assert row["reference"].startswith("engine at no-such-ref-0123: not measured (")
    assert bench.verdict(row) == (0.5, "")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_commit_is_exported_as_a_tree_that_runs():
    with bench.exported("HEAD") as (tree, why):
        if tree is None and "not a git repository" in why:
            pytest.skip("not a git checkout")
        assert why is None and (tree / "harness" / "__init__.py").is_file()
        assert (tree / "experiments").is_dir()
    assert not tree.exists()  # removed afterwards
