"""harness.training.groups: which runs share one program, and what is a value in it (no Keras, no JAX)."""

import copy

import pytest
from conftest import IRIS_NET

from harness import registry
from harness.errors import HarnessError
from harness.spec import from_dict
from harness.training import groups, shapes

L2 = {"class_name": "L2", "l2": 0.01}
STOP = {"class_name": "EarlyStopping", "monitor": "loss", "patience": 2}


def _spec(raw, **changes):
    raw = copy.deepcopy(raw)
    for path, value in changes.items():
        node, parts = raw, path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[parts[-1]] = value
    return from_dict(raw)


def _runs(*specs):
    return [(s, seed, None) for s in specs for seed in s.seeds]


def _names(formed):
    return [group.names() for group in formed]


def test_numbers_are_values_and_sizes_are_shapes():
    """Seeds, learning rate, optimizer numbers, L1/L2 factors, Dropout, EarlyStopping, epochs and
    train_fraction share a program (a hidden layer's units too: below); batch size and optimizer class
    do not."""
    base = _spec(IRIS_NET)
    same = [
        _spec(
            {**IRIS_NET, "name": "lr"}, **{"compile.optimizer": {"class_name": "Adam", "learning_rate": 0.1}}
        ),
        _spec({**IRIS_NET, "name": "betas"}, **{"compile.optimizer": {"class_name": "adam", "beta_1": 0.8}}),
        _spec(
            {**IRIS_NET, "name": "decay"},
            **{"compile.optimizer": {"class_name": "adam", "weight_decay": 0.01}},
        ),
        _spec({**IRIS_NET, "name": "l2"}, **{"model.0.kernel_regularizer": L2}),
        _spec(
            {**IRIS_NET, "name": "l1l2"}, **{"model.1.bias_regularizer": {"class_name": "L1L2", "l1": 0.1}}
        ),
        _spec({**IRIS_NET, "name": "activity"}, **{"model.0.activity_regularizer": {"class_name": "L1"}}),
        _spec(
            {
                **IRIS_NET,
                "name": "dropout",
                "model": [IRIS_NET["model"][0], {"class_name": "Dropout", "rate": 0.3}, IRIS_NET["model"][1]],
            }
        ),
        _spec({**IRIS_NET, "name": "stops"}, **{"fit.callbacks": [STOP]}),
        _spec({**IRIS_NET, "name": "nan"}, **{"fit.callbacks": [{"class_name": "TerminateOnNaN"}]}),
        _spec({**IRIS_NET, "name": "epochs"}, **{"fit.epochs": 7}),
        _spec({**IRIS_NET, "name": "fraction"}, **{"data.train_fraction": 0.5}),
    ]
    other = [
        _spec({**IRIS_NET, "name": "batch"}, **{"fit.batch_size": 16}),
        _spec(
            {**IRIS_NET, "name": "sgd"}, **{"compile.optimizer": {"class_name": "SGD", "learning_rate": 0.01}}
        ),
        _spec(
            {**IRIS_NET, "name": "amsgrad"}, **{"compile.optimizer": {"class_name": "adam", "amsgrad": True}}
        ),
        _spec(
            {**IRIS_NET, "name": "orthogonal"},
            **{"model.0.kernel_regularizer": {"class_name": "OrthogonalRegularizer"}},
        ),
        _spec(
            {
                **IRIS_NET,
                "name": "seeded_dropout",
                "model": [
                    IRIS_NET["model"][0],
                    {"class_name": "Dropout", "rate": 0.3, "seed": 1},
                    IRIS_NET["model"][1],
                ],
            }
        ),
    ]
    formed, notes = groups.form(_runs(base, *same, *other), engine="vectorized")
    assert not notes
    assert _names(formed)[0] == ["iris_net", *(s.name for s in same)]
    assert _names(formed)[1:] == [[s.name] for s in other]
    assert len({shapes.key(s) for s in [base, *same]}) == 1


def _units(name, units, *, dropout=False, activation="relu", optimizer="adam", after=None):
    hidden = {"class_name": "Dense", "units": units, "activation": activation}
    model = [
        hidden,
        *([{"class_name": "Dropout", "rate": 0.3}] if dropout else []),
        *([after] if after else []),
    ]
    return _spec(
        {**IRIS_NET, "name": name, "model": [*model, IRIS_NET["model"][-1]]},
        **{"compile.optimizer": {"class_name": optimizer}},
    )


def test_a_hidden_dense_layers_units_are_a_value_where_zeros_pad_them_exactly():
    """A run of a narrower hidden Dense layer trains in its wider mates' program (its extra units are
    zeros); a narrower one with a Dropout after it trains apart (its masks are drawn for its own
    units); units before a layer or under an activation or optimizer that zeros would change are shapes."""
    wide, narrow = _units("wide", 16), _units("narrow", 4)
    dropout_wide, dropout_narrow = (
        _units("dropout_wide", 16, dropout=True),
        _units("dropout_narrow", 4, dropout=True),
    )
    assert shapes.layout(wide).widths == {0: 16}
    formed, _ = groups.form(_runs(narrow, wide, dropout_narrow, dropout_wide), engine="vectorized")
    assert _names(formed) == [["narrow", "wide", "dropout_wide"], ["dropout_narrow"]]
    assert _names(groups.form(_runs(narrow, dropout_narrow), engine="vectorized")[0]) == [
        ["narrow", "dropout_narrow"]
    ]
    for changed in (
        {"activation": "sigmoid"},  # sigmoid(0) = 0.5: a padded unit would feed the next layer
        {"activation": "softmax"},
        {"optimizer": "adafactor"},  # its statistics are over a kernel's rows and columns
        {"after": {"class_name": "BatchNormalization"}},
    ):
        pair = [_units("a", 4, **changed), _units("b", 16, **changed)]
        assert shapes.layout(pair[0]).widths == {}
        assert len(groups.form(_runs(*pair), engine="vectorized")[0]) == 2, changed


def test_a_layout_takes_out_dropouts_and_l1_l2_regularizers():
    spec = _spec(
        {
            **IRIS_NET,
            "model": [
                {"class_name": "Dropout", "rate": 0.1},
                {**IRIS_NET["model"][0], "kernel_regularizer": L2, "bias_regularizer": {"class_name": "L1"}},
                {"class_name": "Dropout", "rate": 0.5},
                {"class_name": "Dropout", "rate": 0.2},
                IRIS_NET["model"][1],
            ],
        }
    )
    layout = shapes.layout(spec)
    assert list(layout.skeleton) == [
        {"class_name": "Dense", "units": 4, "activation": "relu"},
        IRIS_NET["model"][1],
    ]
    assert layout.indices == (1, 4)
    assert layout.dropouts == {(-1, 0): (0.1, 0), (0, 0): (0.5, 2), (0, 1): (0.2, 3)}
    assert layout.penalties == {(0, "kernel_regularizer"): L2, (0, "bias_regularizer"): {"class_name": "L1"}}


@pytest.mark.parametrize(
    "regularizer, factors",
    [
        ({"class_name": "L1"}, (0.01, 0.0)),
        ({"class_name": "L2", "l2": 0.5}, (0.0, 0.5)),
        ({"class_name": "L1L2", "l2": 0.3}, (0.0, 0.3)),
        ({"class_name": "L1L2", "l1": 1, "l2": 2}, (1.0, 2.0)),
        ({"class_name": "L2", "l1": 0.5}, None),  # not an argument of L2
        ({"class_name": "L2", "l2": "big"}, None),
        ({"class_name": "OrthogonalRegularizer"}, None),
        ("l2", None),
        (None, None),
    ],
)
def test_factors_of_the_regularizers_that_are_values(regularizer, factors):
    assert shapes.factors(regularizer) == factors


def test_specs_expected_later_go_with_the_group_whose_program_can_take_them():
    """The doctor's remedies, told with its baseline: those of its shapes, in its part, with no unit
    wider and no stack deeper ride with the baseline's group (its program is compiled for them)."""
    base = _units("base", 8)
    model = base.to_dict()["model"]
    taken = [
        _units("narrower", 4),
        _spec({**IRIS_NET, "name": "l2", "model": model}, **{"model.0.kernel_regularizer": L2}),
        _units("dropout", 8, dropout=True),
        _spec({**IRIS_NET, "name": "stops", "model": model}, **{"fit.callbacks": [STOP]}),
    ]
    left = [
        _units("wider", 16),  # every run of the program would pay for its units
        _spec({**IRIS_NET, "name": "deeper", "model": [model[0], *model]}),  # and for its layer
        _units("narrower_dropout", 4, dropout=True),  # trains apart from its wider mates
        _units("sgd", 8, optimizer="sgd"),  # another program's shapes
        _spec(
            {**IRIS_NET, "name": "plateau", "model": model},
            **{"fit.callbacks": [{"class_name": "ReduceLROnPlateau", "monitor": "loss"}]},
        ),  # the per-run trainer's
    ]
    assert shapes.key(left[1]) == shapes.key(base)
    formed, _ = groups.form(_runs(base), engine="vectorized", expected=[*taken, *left, base])
    assert [s.name for s in formed[0].expected] == [s.name for s in taken]
    assert groups.form(_runs(base), engine="vectorized")[0][0].expected == ()


def test_the_shipped_suites_are_one_program_per_optimizer():
    """Numbers, units and depth are values: the smaller model (one hidden layer of 64 units instead of
    three of 256) trains in its mates' program; Adam instead of SGD changes the shape."""
    specs = registry.discover()

    def formed(tag):
        chosen = [s for s in specs.values() if tag in s.tags]
        return _names(groups.form(_runs(*chosen), engine="vectorized")[0])

    assert formed("overfitting") == [
        [
            "overfit_baseline",
            "overfit_more_data",
            "overfit_smaller_model",
            "overfit_l1",
            "overfit_l2",
            "overfit_dropout",
            "overfit_early_stopping",
            "overfit_l2_dropout",
        ]
    ]
    assert sorted(map(len, formed("underfitting"))) == [1, 5]
    assert sorted(map(len, formed("iris_overfitting"))) == [7]
    assert sorted(map(len, formed("iris_underfitting"))) == [1, 5]


def test_the_depth_of_a_stack_of_like_relu_layers_is_a_value():
    """Hidden ReLU Dense layers before the output that repeat the first of them but for units are a
    stack whose depth is a value: a shallower spec's layers after its stack move down in the deeper
    program, and the layers between are skipped; other layers, activations or a global clipnorm keep
    depth a shape."""
    hidden = {"class_name": "Dense", "units": 8, "activation": "relu"}
    out = IRIS_NET["model"][-1]
    drop = {"class_name": "Dropout", "rate": 0.3}

    def net(name, *layers, **changes):
        return _spec({**IRIS_NET, "name": name, "model": [*layers, out]}, **changes)

    deep = net("deep", hidden, drop, hidden, {**hidden, "units": 4, "kernel_regularizer": L2})
    shallow = net("shallow", hidden, drop)
    mine = shapes.layout(deep)
    assert mine.stack == (0, 3) and shapes.layout(shallow).stack == (0, 1)
    placed = shapes.placed(shapes.layout(shallow), 3)
    assert placed.indices == (0, None, None, 2) and placed.skipped == (1, 2)
    assert placed.dropouts == {(0, 0): (0.3, 1)} and placed.widths == {0: 8}
    assert shapes.placed(mine, 3) is mine
    assert shapes.key(deep) == shapes.key(shallow)
    tanh = {**hidden, "activation": "tanh"}
    apart = [
        net("tanh_on_top", hidden, tanh),  # the layer before the output is not ReLU: no stack
        net("tanh_below", tanh, hidden, hidden),  # a stack of two after a tanh layer
        net("initializer", hidden, {**hidden, "kernel_initializer": "he_normal"}),
        net(
            "clipped", hidden, hidden, **{"compile.optimizer": {"class_name": "adam", "global_clipnorm": 1.0}}
        ),
        # its mates' stack has one width, 8: a Dropout after its 4 units draws masks for 4, so apart
        net("narrow_dropout", hidden, {**hidden, "units": 4}, drop),
    ]
    assert shapes.layout(apart[0]).stack is None and shapes.layout(apart[1]).stack == (1, 2)
    formed, _ = groups.form(_runs(deep, shallow, *apart), engine="vectorized")
    assert _names(formed) == [["deep", "shallow"], ["narrow_dropout"], *([s.name] for s in apart[:-1])]


def test_unsupported_specs_go_to_the_per_run_path_with_a_line_saying_why():
    plateau = {"class_name": "ReduceLROnPlateau", "monitor": "loss"}
    a = _spec({**IRIS_NET, "name": "plateau", "seeds": [0, 1, 2]}, **{"fit.callbacks": [plateau]})
    schedule = {
        "class_name": "adam",
        "learning_rate": {
            "class_name": "ExponentialDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "decay_rate": 0.9,
        },
    }
    b = _spec({**IRIS_NET, "name": "decay", "seeds": [4]}, **{"compile.optimizer": schedule})
    stop = {"class_name": "EarlyStopping", "monitor": "loss"}
    c = _spec({**IRIS_NET, "name": "stops"}, **{"fit.callbacks": [stop, {"class_name": "TerminateOnNaN"}]})
    formed, notes = groups.form(_runs(a, b, c), engine="vectorized")
    assert [(g.trainer, g.names(), len(g.runs)) for g in formed] == [
        ("vectorized", ["stops"], 2),
        ("per-run", ["plateau"], 1),
        ("per-run", ["plateau"], 1),
        ("per-run", ["plateau"], 1),
        ("per-run", ["decay"], 1),
    ]
    assert notes == [
        "per-run path for plateau (seeds 0-2): callback ReduceLROnPlateau "
        "(the engine takes EarlyStopping and TerminateOnNaN)",
        "per-run path for decay (seed 4): a learning-rate schedule",
    ]


def test_large_groups_are_cut_into_equal_groups_that_each_hold_every_spec():
    many = _spec(IRIS_NET, seeds=list(range(1100)))
    assert [len(g.runs) for g in groups.form(_runs(many), engine="vectorized")[0]] == [367, 367, 366]
    a, b = _spec(IRIS_NET, seeds=list(range(6))), _spec({**IRIS_NET, "name": "b"}, seeds=list(range(6)))
    formed, _ = groups.form(_runs(a, b), engine="vectorized", max_runs=4)
    assert [len(g.runs) for g in formed] == [4, 4, 4]
    assert all(g.names() == ["iris_net", "b"] for g in formed)
    assert sorted(run[1:] for g in formed for run in g.runs if run[0] is a) == [(s, None) for s in range(6)]


def test_cross_validation_folds_of_one_size_share_a_group():
    cv = _spec({**IRIS_NET, "name": "cv", "data": {"dataset": "iris", "cv": {"folds": 2}}})
    formed, notes = groups.form([(cv, 0, 0), (cv, 0, 1), (cv, 1, 0), (cv, 1, 1)], engine="vectorized")
    assert [(g.trainer, len(g.runs)) for g in formed] == [("vectorized", 4)] and not notes
    uneven = _spec(
        {**IRIS_NET, "name": "cv3", "data": {"dataset": "iris", "cv": {"folds": 4}}}
    )  # 38, 38, 37, 37
    formed, _ = groups.form([(uneven, 0, k) for k in range(4)], engine="vectorized")
    assert sorted(len(g.runs) for g in formed) == [2, 2]


def test_the_engine_choice_follows_engine_and_backend(monkeypatch):
    assert groups.choose("auto") == "vectorized"
    assert groups.choose("auto", backend="jax") == "vectorized"
    assert groups.choose("auto", backend="tensorflow") == "per-run"
    assert groups.choose("auto", verbose=True) == "per-run"
    assert groups.choose("per-run") == "per-run"
    with pytest.raises(HarnessError, match="--engine vectorized trains on JAX; drop --backend tensorflow"):
        groups.choose("vectorized", backend="tensorflow")
    monkeypatch.setattr(groups.importlib.util, "find_spec", lambda name: None)
    assert groups.choose("auto") == "per-run"
    with pytest.raises(HarnessError, match="needs JAX"):
        groups.choose("vectorized")
