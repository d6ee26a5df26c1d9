"""The package's import graph: no cycle, and no module uses another's private (`_name`) names."""

import ast
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).parent


def modules():
    return {f"harness.{p.stem}": ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.glob("*.py"))}


def harness_imports(tree):
    """[(imported harness module, names taken from it, local alias)] for every import, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], a.asname or a.name) for a in node.names if a.name.startswith("harness.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
            if node.module == "harness":  # `from harness import data as datasets`: modules
                out += [(f"harness.{a.name}", [], a.asname or a.name) for a in node.names]
            else:
                out.append((node.module, [a.name for a in node.names], None))
    return out


# The one import allowed to close a cycle: `harness.compare(...)` in a notebook is harness.api.compare,
# so the module compare calls into api when called (api imports compare). Keep this list short.
ALLOWED = {("harness.compare", "harness.api")}


def graph():
    known = modules()
    return {
        name: {
            m for m, _, _ in harness_imports(tree) if m in known and m != name and (name, m) not in ALLOWED
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
    assert edges["harness.cli"] >= {"harness.registry", "harness.compare"}  # imports are seen, local ones too
    assert find_cycle(edges) is None


def private_uses(name, tree):
    """'module: how' for each private name this module takes from another harness module."""
    found = []
    aliases = {}
    for module, names, alias in harness_imports(tree):
        found += [f"{name}: from {module} import {n}" for n in names if n.startswith("_")]
        if alias:
            aliases[alias.split(".")[-1] if "." not in alias else alias] = module
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and aliases[node.value.id] != name
        ):
            found.append(f"{name}: {node.value.id}.{node.attr} (line {node.lineno})")
    return found


def test_private_uses_are_found():
    tree = ast.parse("from harness import compare\nfrom harness.diagnosis import _layers\ncompare._f(1)\n")
    assert private_uses("harness.doctor", tree) == [
        "harness.doctor: from harness.diagnosis import _layers",
        "harness.doctor: compare._f (line 3)",
    ]


def test_no_module_uses_another_modules_private_names():
    found = [use for name, tree in modules().items() for use in private_uses(name, tree)]
    assert found == []
