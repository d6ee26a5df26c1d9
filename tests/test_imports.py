"""The package's import graph (harness/*.py and harness/training/*.py): no cycle, no module using
another's private (`_name`) names, and the commands that do not train import neither Keras nor JAX."""

import ast
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, TINY

import harness
from harness.results import now
from harness.spec import from_dict

PACKAGE = Path(harness.__file__).parent


def modules():
    """{module name: syntax tree} of every module of the package, its subpackage's included."""
    found = {}
    for path in sorted([*PACKAGE.glob("*.py"), *PACKAGE.glob("training/*.py")]):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = ast.parse(
            path.read_text(), str(path)
        )
    return found


def harness_imports(tree, known):
    """[(imported harness module, names taken from it, local alias)] for every import, at any depth;
    `from harness.training import groups` imports the module harness.training.groups."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], a.asname or a.name) for a in node.names if a.name.startswith("harness.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "harness":
            names = []
            for a in node.names:
                if f"{node.module}.{a.name}" in known:  # a module: `from harness import data as datasets`
                    out.append((f"{node.module}.{a.name}", [], a.asname or a.name))
                else:
                    names.append(a.name)
            if names:
                out.append((node.module, names, None))
    return out


def graph():
    known = modules()
    packages = {name for name in known if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()}
    # a module's import always imports its packages first: an import of a package is not an edge
    return {
        name: {
            m for m, _, _ in harness_imports(tree, known) if m in known and m not in packages and m != name
        }
        for name, tree in known.items()
    }


def find_cycle(edges):
    """One import cycle as a list of modules, else None (depth-first search)."""
    state, path = {}, []

    def visit(node):
        state[node], path[len(path) :] = "open", [node]
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    edges = graph()
    # imports are seen, local ones and those of the subpackage too
    assert edges["harness.cli"] >= {"harness.registry", "harness.comparison", "harness.training.scheduler"}
    assert edges["harness.training.scheduler"] >= {"harness.results", "harness.training.groups"}
    assert find_cycle(edges) is None


def private_uses(name, tree, known):
    """'module: how' for each private name this module takes from another harness module."""
    found, aliases, attributes = [], {}, []
    for module, names, alias in harness_imports(tree, known):
        found += [
            f"{name}: from {module} import {n}" for n in names if n.startswith("_") and not n.startswith("__")
        ]
        if alias:
            aliases[alias] = module
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and aliases[node.value.id] != name
        ):
            attributes.append((node.lineno, f"{name}: {node.value.id}.{node.attr} (line {node.lineno})"))
    return found + [use for _, use in sorted(attributes)]


def test_private_uses_are_found():
    tree = ast.parse(
        "from harness import comparison\nfrom harness.diagnosis import _layers\n"
        "from harness.training import places\ncomparison._f(1)\nplaces._worker\n"
    )
    assert private_uses("harness.doctor", tree, modules()) == [
        "harness.doctor: from harness.diagnosis import _layers",
        "harness.doctor: comparison._f (line 4)",
        "harness.doctor: places._worker (line 5)",
    ]


def test_no_module_uses_another_modules_private_names():
    known = modules()
    assert [use for name, tree in known.items() for use in private_uses(name, tree, known)] == []


# -- what the commands that do not train import ---------------------------------------------------------


@pytest.fixture
def stored_pair(tmp_path, write_experiments, fake_results):
    """An experiments dir with tiny and its variant tiny_wide, and a results dir with 3 fake runs of each."""
    d = write_experiments([TINY, {"name": "tiny_wide", "base": "tiny", "overrides": {"model.0.units": 8}}])
    root = tmp_path / "results"
    base = from_dict(TINY)
    for spec, shift in ((base, 0.0), (base.with_overrides({"model.0.units": 8}, name="tiny_wide"), 0.05)):
        # finished_at: the MLflow export makes it the run's start time
        rows = [
            fake_results.row(spec, s, test_accuracy=0.8 + shift + s / 100, finished_at=now())
            for s in range(3)
        ]
        fake_results.store(root, spec, rows)
    return d, root


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "tiny", "tiny_wide"],
        ["report", "tiny", "tiny_wide"],
        ["export", "mlflow", "tiny", "tiny_wide"],
    ],
    ids=["compare", "report", "export"],
)
def test_commands_that_do_not_train_import_neither_keras_tensorflow_nor_jax(
    command, stored_pair, tmp_path, harness_env
):
    if command[0] == "export":
        pytest.importorskip("mlflow")  # only a guard: the test command installs the mlflow extra
    d, root = stored_pair
    extra = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"] if command[0] == "export" else []
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "harness", "--experiments", str(d), *command]
        + ["--results", str(root), *extra],
        cwd=ROOT,
        env=harness_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    modules = {
        line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    imported = {module.split(".")[0] for module in modules}
    assert done.returncode == 0, [
        line for line in done.stderr.splitlines() if not line.startswith("import time:")
    ]
    assert {"harness", "pandas"} <= imported  # the import times were read
    assert not imported & {"keras", "tensorflow", "jax", "jaxlib", "torch"}
    assert not [
        m for m in modules if m.startswith("scipy.stats")
    ]  # the t and normal quantiles come from scipy.special, 0.5 s lighter
    if command[0] == "report":  # matplotlib is imported to draw, and only compare draws
        assert "matplotlib" not in imported
