"""harness.spec: defaults, validation messages, immutability, JSON round trip, hash, overrides."""

import dataclasses
import json
import pickle

import pytest
from conftest import changed

from harness.errors import HarnessError, SpecError
from harness.spec import DEFAULTS, Spec, did_you_mean, from_dict, loss_kind, resolve, thaw


def bases_of(*specs):
    """The `bases` lookup resolve() takes, over already resolved specs."""
    table = {s.name: s for s in specs}

    def get(name):
        if name not in table:
            raise SpecError(None, "base", f"no experiment named {name!r}")
        return table[name]

    return get


# -- defaults and normalisation ---------------------------------------------------------


def test_from_dict_fills_defaults(tiny_spec):
    spec = from_dict({"name": "t", "model": tiny_spec["model"]})
    assert spec.description == ""
    assert thaw(spec.data) == DEFAULTS["data"]
    assert spec.fit["epochs"] == 100 and spec.fit["batch_size"] == 32 and spec.fit["callbacks"] == ()
    assert spec.compile["optimizer"] == {"class_name": "adam"}  # a name becomes an object
    assert spec.compile["loss"] == "sparse_categorical_crossentropy"
    assert spec.seeds == (0, 1, 2, 3, 4)  # a count becomes seeds 0..n-1
    assert spec.tags == ()
    assert spec.base is None and dict(spec.overrides) == {}


def test_from_dict_keeps_given_values(tiny_spec):
    spec = from_dict(tiny_spec, source="here.py")
    assert spec.name == "tiny" and spec.source == "here.py"
    assert spec.fit["epochs"] == 2 and spec.fit["batch_size"] == 16
    assert spec.data["test_size"] == 0.2 and spec.data["split_seed"] == 42
    assert spec.seeds == (0,) and spec.tags == ("tiny",)
    assert thaw(spec.model) == tiny_spec["model"]


def test_from_dict_does_not_change_its_input(tiny_spec):
    before = json.dumps(tiny_spec, sort_keys=True)
    from_dict(tiny_spec)
    assert json.dumps(tiny_spec, sort_keys=True) == before


def test_validation_split_with_val_loss_monitor_is_fine(tiny_spec):
    tiny_spec["data"]["validation_size"] = 0.25
    tiny_spec["fit"]["callbacks"] = [{"class_name": "EarlyStopping", "patience": 2}]
    assert from_dict(tiny_spec).fit["callbacks"][0]["class_name"] == "EarlyStopping"


def test_callback_monitoring_training_loss_needs_no_validation(tiny_spec):
    tiny_spec["fit"]["callbacks"] = [{"class_name": "EarlyStopping", "monitor": "loss", "patience": 2}]
    from_dict(tiny_spec)


@pytest.mark.parametrize("rate", [0, 0.0, 0.5, 0.99])
def test_dropout_rate_in_range_is_fine(tiny_spec, rate):
    tiny_spec["model"].insert(1, {"class_name": "Dropout", "rate": rate})
    from_dict(tiny_spec)


def test_onehot_labels_with_categorical_loss_is_fine(tiny_spec):
    tiny_spec["data"]["labels"] = "onehot"
    for loss in ("categorical_crossentropy", "mse", "mean_squared_error"):
        tiny_spec["compile"]["loss"] = loss
        from_dict(tiny_spec)


def test_binary_loss_on_two_classes_is_fine(tiny_spec):
    tiny_spec["data"]["dataset"] = "breast_cancer"
    tiny_spec["model"][-1] = {"class_name": "Dense", "units": 1, "activation": "sigmoid"}
    tiny_spec["compile"]["loss"] = "binary_crossentropy"
    from_dict(tiny_spec)


def test_output_units_follow_the_dataset(tiny_spec):
    tiny_spec["data"]["dataset"] = "digits"
    with pytest.raises(SpecError, match="digits has 10 classes"):
        from_dict(tiny_spec)
    tiny_spec["model"][-1]["units"] = 10
    from_dict(tiny_spec)


# -- every class of bad spec: experiment, field path, bad value, what is allowed ---------


def test_bad_spec_error_names_experiment_field_value_and_remedy(bad_spec, check_message):
    raw, path, fragments = bad_spec
    with pytest.raises(SpecError) as caught:
        from_dict(raw, source="exps.py")
    message = str(caught.value)
    check_message(message, raw["name"], path, fragments)
    assert "(exps.py)" in message  # the module the experiment came from
    assert caught.value.experiment == raw["name"] and caught.value.path == path
    assert "\n" not in message


def test_spec_error_is_a_harness_error():
    err = SpecError("e", "fit.epochs", "got 0; must be a positive integer", "m.py")
    assert isinstance(err, HarnessError)
    assert str(err) == "experiment 'e' (m.py): fit.epochs: got 0; must be a positive integer"
    assert str(SpecError(None, "", "oops")) == "an experiment: oops"


@pytest.mark.parametrize("name", [None, "", "   ", 3])
def test_missing_or_empty_name(tiny_spec, name):
    tiny_spec["name"] = name
    with pytest.raises(SpecError, match="non-empty string name"):
        from_dict(tiny_spec)


def test_csv_dataset_needs_existing_file_and_target(tiny_spec, tmp_path):
    tiny_spec["data"] = {"dataset": "csv", "path": str(tmp_path / "missing.csv"), "target": "y"}
    with pytest.raises(
        SpecError,
        match=r"data\.path: got '.*missing\.csv'; a csv dataset needs the path of an existing CSV file",
    ):
        from_dict(tiny_spec)
    (tmp_path / "d.csv").write_text("a,y\n1,x\n2,y\n3,z\n")
    tiny_spec["data"] = {"dataset": "csv", "path": str(tmp_path / "d.csv")}
    with pytest.raises(
        SpecError, match=r"data\.target: got None; a csv dataset needs the name of its target column"
    ):
        from_dict(tiny_spec)
    tiny_spec["data"]["target"] = "y"
    assert from_dict(tiny_spec).data["target"] == "y"  # three classes x, y, z: units 3 fit


def test_did_you_mean():
    assert did_you_mean("irsi", ["iris", "wine"]) == " Did you mean 'iris'?"
    assert did_you_mean("ADAM", ["adam", "sgd"]) == " Did you mean 'adam'?"
    assert did_you_mean("zzz", ["iris", "wine"]) == ""


@pytest.mark.parametrize(
    "loss, kind",
    [
        ("sparse_categorical_crossentropy", "sparse"),
        ("SparseCategoricalCrossentropy", "sparse"),
        ("binary_crossentropy", "binary"),
        ("categorical_crossentropy", "dense"),
        ("mse", "dense"),
    ],
)
def test_loss_kind(loss, kind):
    assert loss_kind(loss) == kind


# -- immutability ------------------------------------------------------------------------


def test_spec_is_frozen(tiny_spec):
    spec = from_dict(tiny_spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.fit = {}


def test_nested_values_are_read_only(tiny_spec):
    spec = from_dict(tiny_spec)
    with pytest.raises(TypeError):
        spec.fit["epochs"] = 5
    with pytest.raises(TypeError):
        spec.data["dataset"] = "wine"
    with pytest.raises(TypeError):
        spec.model[0]["units"] = 8
    with pytest.raises(TypeError):
        spec.compile["optimizer"]["learning_rate"] = 0.1
    with pytest.raises((TypeError, AttributeError)):
        spec.model.append({"class_name": "Dense", "units": 3})
    with pytest.raises((TypeError, AttributeError)):
        spec.compile["metrics"].append("mse")
    assert spec.fit["epochs"] == 2 and spec.model[0]["units"] == 4


def test_to_dict_is_a_mutable_copy(tiny_spec):
    spec = from_dict(tiny_spec)
    out = spec.to_dict()
    out["model"][0]["units"] = 99
    out["fit"]["epochs"] = 99
    assert spec.model[0]["units"] == 4 and spec.fit["epochs"] == 2


# -- JSON round trip and hash ------------------------------------------------------------


def test_json_round_trip_gives_an_equal_spec_and_hash(tiny_spec):
    tiny_spec["model"][0]["kernel_regularizer"] = {"class_name": "L2", "l2": 0.01}
    tiny_spec["data"]["validation_size"] = 0.25
    tiny_spec["fit"]["callbacks"] = [{"class_name": "EarlyStopping", "monitor": "val_loss", "patience": 3}]
    spec = from_dict(tiny_spec)
    again = from_dict(json.loads(spec.to_json()))
    assert again == spec
    assert again.hash == spec.hash
    assert again.to_dict() == spec.to_dict()
    assert json.loads(json.dumps(spec.to_dict())) == spec.to_dict()


def test_json_round_trip_of_a_variant_keeps_base_and_overrides(tiny_spec):
    base = from_dict(tiny_spec)
    variant = resolve({"name": "wide", "base": "tiny", "overrides": {"model.0.units": 8}}, bases_of(base))
    again = from_dict(json.loads(variant.to_json()))
    assert again.base == "tiny" and dict(again.overrides) == {"model.0.units": 8}
    assert again == variant and again.hash == variant.hash


def test_pickle_round_trip(tiny_spec):
    base = from_dict(tiny_spec, source="exps.py")
    variant = resolve(
        {"name": "wide", "base": "tiny", "overrides": {"model.0.units": 8}}, bases_of(base), "exps.py"
    )
    for spec in (base, variant):
        again = pickle.loads(pickle.dumps(spec))
        assert again == spec and again.hash == spec.hash and again.source == "exps.py"


def test_hash_ignores_name_seeds_tags_and_description(tiny_spec):
    spec = from_dict(tiny_spec)
    other = dict(tiny_spec, name="renamed", seeds=[3, 4, 5], tags=["x", "y"], description="other words")
    assert from_dict(other).hash == spec.hash
    assert spec.with_seeds(range(7)).hash == spec.hash


@pytest.mark.parametrize(
    "changes",
    [
        {"fit": {"epochs": 3, "batch_size": 16}},
        {"fit": {"epochs": 2, "batch_size": 8}},
        {"data": {"dataset": "iris", "split_seed": 1}},
        {"compile": {"optimizer": "sgd", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}},
    ],
)
def test_hash_changes_with_what_is_trained(tiny_spec, changes):
    assert from_dict({**tiny_spec, **changes}).hash != from_dict(tiny_spec).hash


def test_hash_of_a_spec_without_cv_is_the_one_before_cv_existed(tiny_spec):
    assert from_dict(tiny_spec).hash == "f31214811ee5"  # measured before data.cv was added
    with_cv = from_dict(changed(tiny_spec, {"data.cv": {"folds": 5}}))
    assert with_cv.hash != from_dict(tiny_spec).hash
    assert with_cv.data["cv"] == {"folds": 5, "repeats": 1}  # one repeat unless told
    assert with_cv.hash == from_dict(changed(tiny_spec, {"data.cv": {"folds": 5, "repeats": 1}})).hash


def test_hash_is_stable_text(tiny_spec):
    h = from_dict(tiny_spec).hash
    assert isinstance(h, str) and len(h) == 12 and int(h, 16) >= 0
    assert from_dict(tiny_spec).hash == h


# -- variants: overrides of a base ------------------------------------------------------


def test_variant_overrides_and_leaves_the_base_unchanged(tiny_spec):
    base = from_dict(tiny_spec)
    base_dict = base.to_dict()
    overrides = {"model.0.units": 8, "compile.optimizer.learning_rate": 0.01}
    variant = resolve(
        {"name": "wide", "base": "tiny", "overrides": overrides, "description": "wider"}, bases_of(base)
    )
    assert variant.name == "wide" and variant.description == "wider"
    assert variant.model[0]["units"] == 8
    assert variant.compile["optimizer"] == {"class_name": "adam", "learning_rate": 0.01}
    assert variant.base == "tiny"
    assert dict(variant.overrides) == overrides
    # everything else comes from the base
    assert variant.model[1] == base.model[1] and variant.fit == base.fit and variant.data == base.data
    assert variant.seeds == base.seeds and variant.tags == base.tags
    assert variant.hash != base.hash
    # the base is untouched
    assert base.to_dict() == base_dict
    assert base.model[0]["units"] == 4 and "learning_rate" not in base.compile["optimizer"]
    with pytest.raises(TypeError):
        variant.overrides["model.0.units"] = 16


def test_variant_may_add_a_key_to_a_layer(tiny_spec):
    base = from_dict(tiny_spec)
    reg = {"class_name": "L2", "l2": 0.01}
    variant = resolve(
        {"name": "l2", "base": "tiny", "overrides": {"model.0.kernel_regularizer": reg}}, bases_of(base)
    )
    assert thaw(variant.model[0]) == {**tiny_spec["model"][0], "kernel_regularizer": reg}
    assert "kernel_regularizer" not in base.model[0]


def test_variant_may_append_at_the_end_of_a_list(tiny_spec):
    base = from_dict(tiny_spec)
    stop = {"class_name": "EarlyStopping", "monitor": "loss", "patience": 2}
    act = {"class_name": "Activation", "activation": "linear"}
    variant = resolve(
        {"name": "more", "base": "tiny", "overrides": {"fit.callbacks.0": stop, "model.2": act}},
        bases_of(base),
    )
    assert thaw(variant.fit["callbacks"]) == [stop]
    assert len(variant.model) == 3 and thaw(variant.model[2]) == act
    assert len(base.model) == 2 and base.fit["callbacks"] == ()


def test_variant_may_replace_a_list_item_and_a_whole_section_field(tiny_spec):
    base = from_dict(tiny_spec)
    variant = resolve(
        {
            "name": "v",
            "base": "tiny",
            "overrides": {
                "model.-1": {"class_name": "Dense", "units": 3, "activation": "sigmoid"},
                "compile.optimizer": "sgd",
                "data.validation_size": 0.2,
            },
        },
        bases_of(base),
    )
    assert variant.model[1]["activation"] == "sigmoid"
    assert variant.compile["optimizer"] == {"class_name": "sgd"}
    assert variant.data["validation_size"] == 0.2


@pytest.mark.parametrize(
    "path, fragments",
    [
        ("fit.epochz", ["unknown override path", "no field 'epochz'", "Did you mean 'epochs'?"]),
        (
            "modle.0.units",
            ["unknown override path", "'modle' is not a spec section", "Did you mean 'model'?"],
        ),
        ("name", ["unknown override path", "'name' is not a spec section"]),
        ("data.datset", ["unknown override path", "no field 'datset'", "Did you mean 'dataset'?"]),
        ("model.3", ["unknown override path", "index 3 outside a list of 2"]),
        ("model.5.units", ["unknown override path", "'model.5' is outside a list of 2"]),
        ("data.dataset.x", ["unknown override path", "data.dataset is 'iris', not a dict or list"]),
        ("data.dataset.x.y", ["unknown override path", "'data.dataset.x' goes into 'iris'"]),
        ("fit.nested.deeper", ["unknown override path", "no field 'fit.nested'"]),
    ],
)
def test_unknown_override_path_is_rejected(tiny_spec, path, fragments, check_message):
    base = from_dict(tiny_spec)
    with pytest.raises(SpecError) as caught:
        resolve({"name": "bad", "base": "tiny", "overrides": {path: 1}}, bases_of(base))
    check_message(str(caught.value), "bad", path, fragments)


def test_overridden_values_are_validated(tiny_spec, check_message):
    base = from_dict(tiny_spec)
    with pytest.raises(SpecError) as caught:
        resolve({"name": "bad", "base": "tiny", "overrides": {"model.0.units": 0}}, bases_of(base), "v.py")
    check_message(
        str(caught.value), "bad", "model.0.units", ["got 0", "must be a positive integer", "(v.py)"]
    )
    with pytest.raises(SpecError) as caught:
        resolve({"name": "bad", "base": "tiny", "overrides": {"model.1.units": 5}}, bases_of(base))
    check_message(str(caught.value), "bad", "model.1.units", ["got 5", "iris has 3 classes"])


def test_variant_may_set_only_variant_keys(tiny_spec, check_message):
    base = from_dict(tiny_spec)
    with pytest.raises(SpecError) as caught:
        resolve({"name": "bad", "base": "tiny", "fit": {"epochs": 3}}, bases_of(base))
    check_message(str(caught.value), "bad", "fit", ["a variant may set only", "overrides"])
    with pytest.raises(SpecError) as caught:
        resolve({"name": "bad", "base": "tiny", "overides": {}}, bases_of(base))
    check_message(str(caught.value), "bad", "overides", ["Did you mean 'overrides'?"])
    with pytest.raises(SpecError) as caught:
        resolve({"name": "bad", "base": "tiny", "overrides": ["model.0.units", 8]}, bases_of(base))
    check_message(str(caught.value), "bad", "overrides", ["must be a dict of {path: value}"])


def test_variant_sets_its_own_seeds_and_tags(tiny_spec):
    base = from_dict(tiny_spec)
    variant = resolve(
        {"name": "v", "base": "tiny", "overrides": {}, "seeds": 3, "tags": ["v"]}, bases_of(base)
    )
    assert variant.seeds == (0, 1, 2) and variant.tags == ("v",)
    assert variant.hash == base.hash  # same training
    with pytest.raises(SpecError, match="seeds"):
        resolve({"name": "v", "base": "tiny", "seeds": [2, 2]}, bases_of(base))


def test_variant_of_a_variant(tiny_spec):
    base = from_dict(tiny_spec)
    wide = resolve({"name": "wide", "base": "tiny", "overrides": {"model.0.units": 8}}, bases_of(base))
    longer = resolve(
        {"name": "wide_longer", "base": "wide", "overrides": {"fit.epochs": 3}}, bases_of(base, wide)
    )
    assert longer.model[0]["units"] == 8 and longer.fit["epochs"] == 3
    assert longer.base == "wide" and dict(longer.overrides) == {"fit.epochs": 3}
    assert wide.fit["epochs"] == 2 and base.model[0]["units"] == 4


def test_unknown_base(tiny_spec):
    with pytest.raises(SpecError, match="no experiment named 'nope'"):
        resolve({"name": "v", "base": "nope", "overrides": {}}, bases_of(from_dict(tiny_spec)))


def test_with_overrides_and_with_seeds(tiny_spec):
    spec = from_dict(tiny_spec)
    longer = spec.with_overrides({"fit.epochs": 5}, name="tiny[fit.epochs=5]")
    assert longer.name == "tiny[fit.epochs=5]" and longer.fit["epochs"] == 5
    assert longer.base == "tiny" and dict(longer.overrides) == {"fit.epochs": 5}
    assert spec.fit["epochs"] == 2
    seeded = spec.with_seeds(range(3))
    assert seeded.seeds == (0, 1, 2) and spec.seeds == (0,)
    with pytest.raises(SpecError, match="fit.epochs: got 0"):
        spec.with_overrides({"fit.epochs": 0})


def test_resolve_needs_a_dict():
    with pytest.raises(SpecError, match="an experiment must be a dict, got list"):
        resolve(["name", "x"], bases_of())


def test_spec_type():
    assert dataclasses.is_dataclass(Spec)


def test_training_hash_of_the_stored_dict_is_the_spec_hash(tiny_spec):
    from harness.comparison import spec_hash

    tiny_spec = from_dict(tiny_spec)
    stored = json.loads(tiny_spec.to_json())
    assert spec_hash(stored) == tiny_spec.hash
    assert spec_hash({**stored, "name": "other", "seeds": [7]}) == tiny_spec.hash
    assert spec_hash({**stored, "fit": {**stored["fit"], "epochs": 3}}) != tiny_spec.hash


def test_set_name_writes_each_override_as_set_takes_it():
    from harness.cli import parse_set
    from harness.spec import set_name, set_text

    overrides = {"fit.epochs": 20, "compile.optimizer.class_name": "SGD", "model.0.units": None}
    assert (
        set_name("iris", overrides)
        == "iris[fit.epochs=20,compile.optimizer.class_name=SGD,model.0.units=null]"
    )
    assert dict(parse_set(set_text(p, v)) for p, v in overrides.items()) == overrides


def default_fields():
    """{'data.test_size': 0.2, ...}: every field DEFAULTS fills in, by path."""
    out = {}
    for key, value in DEFAULTS.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def docs_spec_table():
    """{field: default as written} from the "## The spec" table of docs/experiments.md."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "experiments.md").read_text()
    section = text.split("\n## The spec\n", 1)[1].split("\n#", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    table = {}
    for fields, defaults in rows:
        names, values = (
            re.findall(r"`([^`]+)`", fields),
            re.findall(r"`([^`]+)`", defaults) or [defaults.strip()],
        )
        table.update(zip(names, values if len(values) == len(names) else values * len(names)))
    return table


def test_every_field_has_constraints_and_every_constraint_a_field():
    from harness.spec import CONSTRAINTS

    fields = set(default_fields()) | {"model"}
    assert fields <= set(CONSTRAINTS)
    assert {f for f in CONSTRAINTS if "*" not in f and not f.startswith("compile.optimizer.")} == fields


def test_the_docs_spec_table_lists_every_field_with_its_default():
    table = docs_spec_table()
    assert table.pop("name") == "required" and table.pop("model") == "required"
    assert table == {path: json.dumps(value) for path, value in default_fields().items()}


def test_plus_index_inserts_a_layer_and_overrides_apply_in_order(tiny_spec):
    base = from_dict(tiny_spec)
    drop = {"class_name": "Dropout", "rate": 0.5}
    spec = base.with_overrides({"model.+1": drop, "model.+0": {"class_name": "Dense", "units": 8}})
    assert [layer["class_name"] for layer in spec.model] == ["Dense", "Dense", "Dropout", "Dense"]
    assert spec.model[2] == drop and spec.model[1] == base.model[0] and spec.model[3] == base.model[1]
    assert base.with_overrides({"model.+2": drop}).model[-1] == drop  # +len appends


@pytest.mark.parametrize("path", ["model.+3", "model.+x", "model.+-1"])
def test_a_bad_insert_index_names_the_path(tiny_spec, path):
    with pytest.raises(SpecError) as err:
        from_dict(tiny_spec).with_overrides({path: {"class_name": "Dropout", "rate": 0.5}})
    assert f"{path}: unknown override path" in str(err.value) and "+0 to +2" in str(err.value)


def test_with_two_bad_layers_the_first_layer_is_reported(tiny_spec):
    tiny_spec["model"][0]["activation"] = 3
    tiny_spec["model"][1]["units"] = 0
    with pytest.raises(SpecError, match=r"model\.0\.activation: got 3"):
        from_dict(tiny_spec)


# -- what a run trained on, names, seeds ------------------------------------------------


def test_builtin_data_sets_hash_as_before(tiny_spec):
    """Hashes of specs on built-in data sets did not change when data files joined the hash:
    results stored before stay valid (values computed before the change)."""
    assert from_dict(tiny_spec).hash == "f31214811ee5"
    from harness import registry

    assert registry.discover()["iris_baseline"].hash == "b83ca0486460"


def test_a_csv_data_set_hashes_its_contents(tiny_spec, tmp_path):
    path = tmp_path / "d.csv"
    rows = "".join(f"{i},{i % 3},{'abc'[i % 3]}\n" for i in range(30))
    path.write_text("a,b,y\n" + rows)
    tiny_spec["data"] = {"dataset": "csv", "path": str(path), "target": "y"}
    before = from_dict(tiny_spec).hash
    assert from_dict(tiny_spec).hash == before  # same file, same hash
    path.write_text("a,b,y\n" + rows.replace("7,1,b", "7,2,b"))  # one cell fixed
    assert from_dict(tiny_spec).hash != before  # a changed file is not "already stored"


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("caf\u00e9", "not allowed: '\u00e9'"),
        ("a\x00b", "not allowed: '\\x00'"),
        ("a/b", "no '/'"),
        ("_hidden", None),  # allowed: the Keras model name is made valid separately
        (".hidden", "cannot start with '.'"),
        ("-x", "cannot start with '.', '-'"),
        ("x" * 201, "201 characters; at most 200"),
    ],
)
def test_names_are_checked_up_front(tiny_spec, name, fragment):
    tiny_spec["name"] = name
    if fragment is None:
        assert from_dict(tiny_spec).name == name
        return
    with pytest.raises(SpecError, match="name: got ") as caught:
        from_dict(tiny_spec)
    assert fragment in str(caught.value)


def test_derived_names_escape_what_a_name_cannot_hold_and_stay_short():
    from harness.spec import NAME_MAX, derived_name, name_problem

    assert derived_name("iris", "data.path=/data/x.csv") == "iris[data.path=%2Fdata%2Fx.csv]"
    assert derived_name("iris", "a=50%") == "iris[a=50%25]"  # % itself: two labels never share a name
    assert derived_name("iris", "a=\u00e9") == "iris[a=%C3%A9]"
    long = derived_name("iris", "data.path=" + "/x" * 200)
    assert len(long) == NAME_MAX and name_problem(long) is None
    assert long != derived_name("iris", "data.path=" + "/x" * 199)  # the hash tells them apart


@pytest.mark.parametrize(
    "seeds, fragment",
    [(True, "got True; must be a positive count"), (-3, "got -3; must be a positive count"), (0, "got 0")],
)
def test_seeds_that_are_not_a_count(tiny_spec, seeds, fragment):
    tiny_spec["seeds"] = seeds
    with pytest.raises(SpecError, match="seeds: ") as caught:
        from_dict(tiny_spec)
    assert fragment in str(caught.value)
    base = from_dict({**tiny_spec, "seeds": 1})
    with pytest.raises(SpecError, match="seeds: ") as caught:  # a variant's seeds too
        resolve({"name": "v", "base": "tiny", "seeds": seeds}, bases_of(base))
    assert fragment in str(caught.value)
