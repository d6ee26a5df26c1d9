"""harness.training.draws: Keras' draws on JAX equal, bit for bit, what JAX draws at their own shape,
from one compiled program for weights of many shapes.

Keras takes JAX as its backend in a subprocess only (this file run as a script with
KERAS_BACKEND=jax), which prints its findings as JSON; the tests assert on them.
"""

import json
import os
import subprocess

import pytest
from conftest import PYTHON, ROOT

SHAPES = [((13, 17), "float32")]  # an odd size (HeNormal and GlorotUniform below at another)


def _measure():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from harness.training import draws
    from harness.training.backend import keras

    random = keras.src.backend.jax.random

    def key(seed):
        return jnp.array([seed, 0], dtype=jnp.uint32)

    out = {"backend": keras.backend.backend()}
    for shape, dtype in SHAPES:
        mine = [
            random.uniform(shape, minval=-0.3, maxval=0.7, dtype=dtype, seed=11),
            random.normal(shape, mean=0.5, stddev=2.0, dtype=dtype, seed=12),
            random.truncated_normal(shape, mean=-1.0, stddev=0.1, dtype=dtype, seed=13),
        ]
        jaxs = [
            jax.random.uniform(key(11), shape, dtype, minval=-0.3, maxval=0.7),
            jax.random.normal(key(12), shape, dtype) * 2.0 + 0.5,
            jax.random.truncated_normal(key(13), -2.0, 2.0, shape, dtype) * 0.1 - 1.0,
        ]
        out[f"equal.{shape}.{dtype}"] = [
            m.shape == shape and np.array_equal(m, j) for m, j in zip(mine, jaxs)
        ]

    glorot, limit = keras.initializers.GlorotUniform(seed=3)((7, 5)), np.sqrt(6.0 / (7 + 5))
    he, stddev = keras.initializers.HeNormal(seed=4)((7, 5)), np.sqrt(2.0 / 7) / 0.87962566103423978
    out["initializers"] = [
        np.array_equal(glorot, jax.random.uniform(key(3), (7, 5), minval=-limit, maxval=limit)),
        np.array_equal(he, jax.random.truncated_normal(key(4), -2.0, 2.0, (7, 5)) * stddev),
    ]

    lowered = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            lowered.append(event)

    random.uniform((2, 2), seed=0)  # the bucket's program
    jax.monitoring.register_event_duration_secs_listener(listen)
    for shape in [(23, 19), (29, 31), (37,), (41, 43, 2), (47, 53)]:
        random.uniform(shape, seed=1)
    jax.monitoring.unregister_event_duration_listener(listen)
    out["lowered_for_five_shapes"] = len(lowered)

    traced = jax.jit(lambda k: random.uniform((5, 3), seed=k))(key(9))
    out["traced_equal"] = bool(np.array_equal(traced, jax.random.uniform(key(9), (5, 3))))

    jax.config.update("jax_threefry_partitionable", False)
    mine = random.uniform((30, 7), seed=5)
    prefix = np.asarray(jax.random.uniform(key(5), (draws.bucket(210),)))[:210].reshape(30, 7)
    out["unpartitioned"] = [
        bool(np.array_equal(mine, jax.random.uniform(key(5), (30, 7)))),
        bool(np.array_equal(mine, prefix)),
    ]
    jax.config.update("jax_threefry_partitionable", True)
    out["buckets"] = [
        draws.bucket(n) // draws.BUCKET for n in (1, draws.BUCKET, draws.BUCKET + 1, 3 * draws.BUCKET)
    ]
    return out


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_EXPERIMENTS"}
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])  # the harness, and conftest for this file
    env.update(KERAS_BACKEND="jax", HARNESS_CACHE=str(tmp_path_factory.mktemp("cache")), PYTHONPATH=path)
    done = subprocess.run(
        [PYTHON, __file__], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_it_ran_on_jax(measured):
    assert measured["backend"] == "jax"


@pytest.mark.parametrize("shape,dtype", [(str(shape), dtype) for shape, dtype in SHAPES])
def test_uniform_normal_and_truncated_normal_equal_jax_at_their_own_shape(measured, shape, dtype):
    assert measured[f"equal.{shape}.{dtype}"] == [True, True, True]


def test_keras_initializers_give_what_jax_draws_at_their_shape(measured):
    assert measured["initializers"] == [True, True]  # GlorotUniform (uniform), HeNormal (truncated_normal)


def test_weights_of_many_shapes_share_one_compiled_draw(measured):
    assert measured["lowered_for_five_shapes"] == 0  # Keras alone lowers and compiles one program per shape


def test_a_traced_key_draws_as_keras_does(measured):
    assert measured["traced_equal"] is True


def test_without_partitionable_threefry_the_draw_is_jaxs_own(measured):
    # there a longer draw's first numbers are other numbers, so the flat draw must not be used
    assert measured["unpartitioned"] == [True, False]


def test_a_flat_draw_is_a_power_of_two_of_at_least_the_weights_size(measured):
    assert measured["buckets"] == [1, 1, 2, 4]  # in BUCKETs, for 1, BUCKET, BUCKET + 1 and 3 BUCKETs numbers


if __name__ == "__main__":
    print(json.dumps(_measure()))
