"""Finds experiment modules and resolves the experiments they declare.

An experiment module is any `*.py` file (not starting with `_`) in an experiments
directory that defines `EXPERIMENTS`, a list of plain dicts. Directories searched: ./experiments
if there is one, else the experiments shipped with the harness; then those in $HARNESS_EXPERIMENTS
(os.pathsep-separated), then those given with `--experiments DIR`.
"""

import fnmatch
import importlib.util
import os
import sys
from pathlib import Path

from harness import search
from harness.errors import HarnessError, SpecError
from harness.spec import did_you_mean, resolve

ENV_VAR = "HARNESS_EXPERIMENTS"


def shipped_dir():
    """The experiments shipped with the harness: harness/experiments/ in an installed copy (the wheel
    puts them there), the repository's experiments/ beside the package in a clone."""
    package = Path(__file__).resolve().parent
    installed = package / "experiments"
    return installed if installed.is_dir() else package.parent / "experiments"


def default_dirs():
    """./experiments if there is one, else the shipped experiments."""
    here = Path.cwd() / "experiments"
    return [here if here.is_dir() else shipped_dir()]


def experiment_dirs(extra=()):
    dirs = default_dirs()
    dirs += [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    for d in extra:
        if not Path(d).is_dir():
            raise HarnessError(f"--experiments {d}: no such directory")
        dirs.append(Path(d))
    unique = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def _import(path):
    module_name = f"harness_experiments_{abs(hash(str(path.resolve())))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    loaded = set(sys.modules)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's module: report it as theirs, without our traceback
        raise HarnessError(f"{path}: cannot import experiment module: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:  # sys.exit() or exit() at import would end the command silently
        raise HarnessError(
            f"{path}: cannot import experiment module: "
            f"it called sys.exit({exc.code!r}) while being imported; "
            "an experiment module should only define EXPERIMENTS"
        ) from None
    finally:
        sys.path.remove(str(path.parent))
        _forget_helpers(path.parent, set(sys.modules) - loaded)
    return module


def _forget_helpers(folder, names):
    """Drop the modules (e.g. `_common`) an experiment module imported from its own folder, so
    that another experiments directory's module of the same name is its own."""
    for name in names:
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        if Path(origin).resolve().parent == Path(folder).resolve():
            del sys.modules[name]


def _short(value, width=60):
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def raw_experiments(dirs):
    """[(raw dict, module path)] from every experiment module in `dirs`."""
    found = []
    for d in dirs:
        for path in sorted(Path(d).glob("*.py")):
            if path.name.startswith("_"):
                continue
            declared = getattr(_import(path), "EXPERIMENTS", None)
            if declared is None:
                continue
            if not isinstance(declared, (list, tuple)):
                raise HarnessError(
                    f"{path}: EXPERIMENTS must be a list of experiment dicts, got {type(declared).__name__}"
                )
            for i, raw in enumerate(declared):
                if not isinstance(raw, dict):
                    raise HarnessError(
                        f"{path}: EXPERIMENTS[{i}] is {type(raw).__name__} {_short(raw)}, not an experiment "
                        "dict; every entry must be a dict such as {'name': ..., 'model': [...]}"
                    )
                found.append((raw, str(path)))
    return found


def discover(extra_dirs=()):
    """{name: Spec} for every experiment found (a search: its trials); duplicate names and bad specs raise."""
    raws = {}
    for raw, source in raw_experiments(experiment_dirs(extra_dirs)):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str):
            raise SpecError(None, "name", f"got {name!r}; every experiment needs a string name", source)
        if name in raws:
            raise HarnessError(f"two experiments are named {name!r}: one in {raws[name][1]}, one in {source}")
        raws[name] = (raw, source)
    specs, searched = {}, {}
    resolving = []

    def get(name):
        if name in specs:
            return specs[name]
        if name not in raws:
            child, source = resolving[-1]
            raise SpecError(
                child, "base", f"no experiment named {name!r}.{did_you_mean(name, raws)}", raws[child][1]
            )
        if name in [n for n, _ in resolving]:
            chain = " -> ".join([n for n, _ in resolving] + [name])
            raise SpecError(name, "base", f"variants form a cycle: {chain}", raws[name][1])
        resolving.append((name, raws[name][1]))
        raw, source = raws[name]
        raw, space = search.split(raw)
        specs[name] = resolve(raw, get, source)
        if space is not None:
            searched[name] = search.trials(specs[name], space, source)
        resolving.pop()
        return specs[name]

    for name in raws:
        get(name)
    found = {}
    for name in raws:  # a search stands for its trials
        for spec in searched.get(name, [specs[name]]):
            if spec.name in found:
                raise HarnessError(
                    f"two experiments are named {spec.name!r} (one of them a trial of a search)"
                )
            found[spec.name] = spec
    return found


def resolve_one(raw, specs, source=None):
    """[Spec] for one experiment dict given outside a module (a notebook's), checked as `discover` checks a
    module's: a variant's base is looked up in `specs`; a search gives its trials."""
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str):
        raise SpecError(None, "name", f"got {name!r}; every experiment needs a string name", source)

    def get(base):
        if base not in specs:
            raise SpecError(name, "base", f"no experiment named {base!r}.{did_you_mean(base, specs)}", source)
        return specs[base]

    raw, space = search.split(raw)
    spec = resolve(raw, get, source)
    return search.trials(spec, space, source) if space is not None else [spec]


def _matches(name, pattern):
    """fnmatch, where brackets may also stand for themselves: 'iris_lr_grid[*sgd]' matches trial names."""
    literal = pattern.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
    return fnmatch.fnmatchcase(name, pattern) or ("[" in pattern and fnmatch.fnmatchcase(name, literal))


def select(specs, patterns=(), suite=None):
    """Experiments matching any name or glob pattern (a search's name: its trials), plus those tagged
    `suite` (a tag or a list of tags); in order."""
    if not patterns and not suite:
        raise HarnessError("name at least one experiment (names or glob patterns) or a --suite")
    chosen = []
    for pattern in patterns:
        matches = (
            [pattern]
            if pattern in specs
            else [
                n
                for n, s in specs.items()
                if _matches(n, pattern) or (search.of(s) and _matches(search.of(s).name, pattern))
            ]
        )
        if not matches:
            names = [*specs, *{search.of(s).name for s in specs.values() if search.of(s)}]
            raise HarnessError(
                f"no experiment matches {pattern!r}.{did_you_mean(pattern, names)} "
                "`python -m harness list` shows them all"
            )
        chosen += [n for n in matches if n not in chosen]
    for tag in [suite] if isinstance(suite, str) else list(suite or []):
        tagged = [n for n, s in specs.items() if tag in s.tags]
        if not tagged:
            tags = sorted({t for s in specs.values() for t in s.tags})
            raise HarnessError(
                f"no experiment is tagged {tag!r}; tags: {', '.join(tags)}.{did_you_mean(tag, tags)}"
            )
        chosen += [n for n in tagged if n not in chosen]
    return [specs[n] for n in chosen]
