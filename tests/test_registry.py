"""harness.registry: discovery of experiment modules, variants across them, selection."""

import os
import re

import pytest

from harness import registry
from harness.errors import HarnessError, SpecError


def test_project_experiments_are_found():
    specs = registry.discover()
    assert "iris_baseline" in specs
    spec = specs["iris_baseline"]
    assert spec.source.endswith(os.path.join("experiments", "iris.py"))
    assert spec.fit["epochs"] == 100 and spec.fit["batch_size"] == 10 and len(spec.seeds) == 5


def test_discovery_from_a_temporary_directory(write_experiments, tiny_spec):
    other = dict(tiny_spec, name="tiny_two", tags=["two"])
    d = write_experiments([tiny_spec, other])
    specs = registry.discover([d])
    assert {"tiny", "tiny_two", "iris_baseline"} <= set(specs)
    assert specs["tiny"].source == str(d / "exps.py")
    assert specs["tiny_two"].tags == ("two",)
    assert list(specs).index("tiny") < list(specs).index("tiny_two")  # declaration order


def test_several_modules_and_directories(write_experiments, tiny_spec, tmp_path):
    d1 = write_experiments([tiny_spec], module="a.py")
    write_experiments([dict(tiny_spec, name="from_b")], module="b.py")
    d2 = write_experiments([dict(tiny_spec, name="elsewhere")], directory=tmp_path / "more")
    specs = registry.discover([d1, d2])
    assert specs["tiny"].source == str(d1 / "a.py")
    assert specs["from_b"].source == str(d1 / "b.py")
    assert specs["elsewhere"].source == str(d2 / "exps.py")


def test_two_experiments_with_one_name_is_an_error_naming_both_modules(write_experiments, tiny_spec):
    d = write_experiments([tiny_spec], module="a.py")
    write_experiments([dict(tiny_spec, description="again")], module="b.py")
    with pytest.raises(HarnessError) as caught:
        registry.discover([d])
    message = str(caught.value)
    assert "two experiments are named 'tiny'" in message
    assert str(d / "a.py") in message and str(d / "b.py") in message


def test_one_name_twice_in_one_module(write_experiments, tiny_spec):
    d = write_experiments([tiny_spec, tiny_spec])
    with pytest.raises(HarnessError, match="two experiments are named 'tiny'"):
        registry.discover([d])


def test_a_name_clashing_with_the_project_experiments(write_experiments, tiny_spec):
    d = write_experiments([dict(tiny_spec, name="iris_baseline")])
    with pytest.raises(HarnessError) as caught:
        registry.discover([d])
    assert "iris.py" in str(caught.value) and str(d / "exps.py") in str(caught.value)


def test_modules_starting_with_underscore_are_skipped(write_experiments, tiny_spec):
    d = write_experiments([tiny_spec])
    write_experiments("raise RuntimeError('must not be imported')\n", module="_helpers.py")
    write_experiments([dict(tiny_spec, name="hidden")], module="__init__.py")
    specs = registry.discover([d])
    assert "tiny" in specs and "hidden" not in specs


def test_a_module_without_experiments_is_ignored(write_experiments, tiny_spec):
    d = write_experiments([tiny_spec])
    write_experiments("SOMETHING_ELSE = 1\n", module="plain.py")
    assert "tiny" in registry.discover([d])


def test_a_module_that_raises_on_import_names_the_file(write_experiments):
    d = write_experiments("import math\nEXPERIMENTS = [1 / 0]\n", module="broken.py")
    with pytest.raises(HarnessError) as caught:
        registry.discover([d])
    message = str(caught.value)
    assert str(d / "broken.py") in message
    assert "cannot import experiment module" in message and "ZeroDivisionError" in message


def test_a_module_with_a_syntax_error_names_the_file(write_experiments):
    d = write_experiments("EXPERIMENTS = [\n", module="typo.py")
    with pytest.raises(HarnessError) as caught:
        registry.discover([d])
    assert str(d / "typo.py") in str(caught.value) and "SyntaxError" in str(caught.value)


def test_a_module_may_import_its_neighbours(write_experiments, tiny_spec):
    d = write_experiments(f"BASE = {tiny_spec!r}\n", module="_common.py")
    write_experiments(
        "from _common import BASE\nEXPERIMENTS = [dict(BASE, name='shared')]\n", module="uses.py"
    )
    assert "shared" in registry.discover([d])


def test_experiments_must_be_a_list(write_experiments, tiny_spec):
    d = write_experiments(f"EXPERIMENTS = {tiny_spec!r}\n")
    with pytest.raises(
        HarnessError, match=r"exps\.py: EXPERIMENTS must be a list of experiment dicts, got dict"
    ):
        registry.discover([d])


def test_an_experiment_without_a_name(write_experiments, tiny_spec):
    del tiny_spec["name"]
    d = write_experiments([tiny_spec])
    with pytest.raises(SpecError, match=r"exps\.py.*name: got None"):
        registry.discover([d])


def test_a_bad_spec_names_its_module(write_experiments, tiny_spec, check_message):
    tiny_spec["fit"]["epochs"] = 0
    d = write_experiments([tiny_spec])
    with pytest.raises(SpecError) as caught:
        registry.discover([d])
    check_message(
        str(caught.value), "tiny", "fit.epochs", ["got 0", "must be a positive integer", f"({d / 'exps.py'})"]
    )


def test_bad_spec_through_load(write_experiments, bad_spec, check_message):
    raw, path, fragments = bad_spec
    d = write_experiments([raw])
    with pytest.raises(HarnessError) as caught:
        registry.discover([d])
    check_message(str(caught.value), raw["name"], path, fragments)


# -- variants across the registry -------------------------------------------------------


def test_variants_resolve_in_any_order_and_across_modules(write_experiments, tiny_spec):
    # the variant of a variant is declared before both of its bases
    d = write_experiments(
        [{"name": "wide_longer", "base": "wide", "overrides": {"fit.epochs": 3}}], module="a.py"
    )
    write_experiments(
        [tiny_spec, {"name": "wide", "base": "tiny", "overrides": {"model.0.units": 8}}], module="b.py"
    )
    specs = registry.discover([d])
    assert specs["wide_longer"].model[0]["units"] == 8 and specs["wide_longer"].fit["epochs"] == 3
    assert specs["wide_longer"].base == "wide" and specs["wide"].base == "tiny"
    assert specs["wide"].fit["epochs"] == 2 and specs["tiny"].model[0]["units"] == 4
    assert specs["wide_longer"].source == str(d / "a.py")


def test_a_variant_of_a_project_experiment(write_experiments):
    d = write_experiments(
        [{"name": "iris_short", "base": "iris_baseline", "overrides": {"fit.epochs": 3}, "seeds": 2}]
    )
    specs = registry.discover([d])
    assert specs["iris_short"].fit["epochs"] == 3 and specs["iris_short"].seeds == (0, 1)
    assert specs["iris_baseline"].fit["epochs"] == 100
    assert specs["iris_short"].tags == specs["iris_baseline"].tags


def test_unknown_base(write_experiments, tiny_spec):
    d = write_experiments([tiny_spec, {"name": "v", "base": "tiyn", "overrides": {}}])
    with pytest.raises(SpecError) as caught:
        registry.discover([d])
    message = str(caught.value)
    assert "experiment 'v'" in message and "base: " in message
    assert "no experiment named 'tiyn'" in message and "Did you mean 'tiny'?" in message
    assert str(d / "exps.py") in message


def test_base_cycle(write_experiments):
    d = write_experiments(
        [
            {"name": "a", "base": "b", "overrides": {}},
            {"name": "b", "base": "c", "overrides": {}},
            {"name": "c", "base": "a", "overrides": {}},
        ]
    )
    with pytest.raises(SpecError) as caught:
        registry.discover([d])
    message = str(caught.value)
    assert "variants form a cycle: a -> b -> c -> a" in message and "base: " in message


def test_a_variant_that_is_its_own_base(write_experiments):
    d = write_experiments([{"name": "self", "base": "self", "overrides": {}}])
    with pytest.raises(SpecError, match="variants form a cycle: self -> self"):
        registry.discover([d])


def test_unknown_override_path_in_a_module(write_experiments, tiny_spec, check_message):
    d = write_experiments([tiny_spec, {"name": "v", "base": "tiny", "overrides": {"fit.epochz": 3}}])
    with pytest.raises(SpecError) as caught:
        registry.discover([d])
    check_message(
        str(caught.value),
        "v",
        "fit.epochz",
        ["unknown override path", "Did you mean 'epochs'?", str(d / "exps.py")],
    )


def test_a_bad_override_names_the_variants_module_not_the_bases(write_experiments, tiny_spec, check_message):
    d = write_experiments([tiny_spec], module="base.py")
    write_experiments(
        [{"name": "v", "base": "tiny", "overrides": {"model.0.units": -1}}], module="variant.py"
    )
    with pytest.raises(SpecError) as caught:
        registry.discover([d])
    message = str(caught.value)
    check_message(message, "v", "model.0.units", ["got -1", str(d / "variant.py")])
    assert "base.py" not in message


# -- which directories --------------------------------------------------------------------


def test_env_var_adds_directories(write_experiments, tiny_spec, tmp_path, monkeypatch):
    d1 = write_experiments([tiny_spec], directory=tmp_path / "one")
    d2 = write_experiments([dict(tiny_spec, name="other")], directory=tmp_path / "two")
    monkeypatch.setenv(registry.ENV_VAR, os.pathsep.join([str(d1), str(d2)]))
    specs = registry.discover()
    assert {"tiny", "other", "iris_baseline"} <= set(specs)


def test_a_directory_given_twice_is_read_once(write_experiments, tiny_spec, monkeypatch):
    d = write_experiments([tiny_spec])
    monkeypatch.setenv(registry.ENV_VAR, str(d))
    assert "tiny" in registry.discover([d, str(d)])


def test_missing_experiments_directory(tmp_path):
    with pytest.raises(HarnessError, match="--experiments .*nowhere: no such directory"):
        registry.discover([tmp_path / "nowhere"])


# -- selection ----------------------------------------------------------------------------


@pytest.fixture
def three(write_experiments, tiny_spec):
    d = write_experiments(
        [
            dict(tiny_spec, name="alpha_one", tags=["suite_a"]),
            dict(tiny_spec, name="alpha_two", tags=["suite_a", "suite_b"]),
            dict(tiny_spec, name="beta", tags=[]),
        ]
    )
    return registry.discover([d])


def test_select_by_name_glob_and_suite(three):
    names = lambda specs: [s.name for s in specs]  # noqa: E731
    assert names(registry.select(three, ["beta"])) == ["beta"]
    assert names(registry.select(three, ["alpha_*"])) == ["alpha_one", "alpha_two"]
    assert names(registry.select(three, ["beta", "alpha_*", "beta"])) == ["beta", "alpha_one", "alpha_two"]
    assert names(registry.select(three, suite="suite_b")) == ["alpha_two"]
    assert names(registry.select(three, ["beta"], suite="suite_a")) == ["beta", "alpha_one", "alpha_two"]


def test_select_errors(three):
    with pytest.raises(HarnessError, match="name at least one experiment"):
        registry.select(three)
    with pytest.raises(HarnessError, match=re.escape("no experiment matches 'bata'. Did you mean 'beta'?")):
        registry.select(three, ["bata"])
    with pytest.raises(
        HarnessError,
        match=re.escape("no experiment is tagged 'suit_b'; tags: ")
        + ".*suite_a, suite_b.*"
        + re.escape(". Did you mean 'suite_b'?"),
    ):
        registry.select(three, suite="suit_b")


def test_several_suites(three):
    assert [s.name for s in registry.select(three, suite=["suite_b", "suite_a"])] == [
        "alpha_two",
        "alpha_one",
    ]


def test_a_module_that_exits_at_import_is_an_error_naming_it(write_experiments):
    d = write_experiments("import sys\nsys.exit(0)\n", module="quits.py")
    with pytest.raises(HarnessError) as caught:
        registry.discover([d])
    assert str(d / "quits.py") in str(caught.value) and "called sys.exit(0)" in str(caught.value)


def test_an_entry_that_is_not_a_dict(write_experiments, tiny_spec):
    d = write_experiments(f"EXPERIMENTS = [{tiny_spec!r}, None]\n")
    with pytest.raises(
        HarnessError, match=r"exps\.py: EXPERIMENTS\[1\] is NoneType None, not an experiment dict"
    ):
        registry.discover([d])
