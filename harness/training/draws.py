"""Keras' random draws on JAX from one compiled program per distribution and size bucket, not per shape.

Outside a traced function Keras draws a weight of shape S with `jax.random.<distribution>(key, S)`, and
JAX compiles a program for each new S: about 0.25 s each, most of what checking a spec costs (the
doctor's 19 remedies made 13 such compiles, 4.2 s of 5.6 s). Under JAX's partitionable Threefry (its
default since 0.5) element i of a draw depends only on the key and i, so the draw of shape S is, bit
for bit, the first prod(S) numbers of a longer flat draw from the same key, reshaped. `install` makes
Keras' `normal`, `uniform` and `truncated_normal` take their numbers so: from a flat draw of
`bucket(prod(S))` numbers. Traced keys, other generators and dtypes, and huge weights draw as Keras
does. A program of the shape's own would cost about 0.3 ms less a draw; a run draws a few weights.
"""

import math

import jax
import numpy as np

BUCKET = 1 << 14  # the smallest flat draw: a longer one costs a small weight more than its compile saves
LARGEST = 1 << 22  # a larger weight is drawn at its own shape: its compile is no longer what it costs


def bucket(size):
    """The flat draw's length for a weight of `size` numbers: a power of two, at least BUCKET."""
    return max(BUCKET, 1 << max(size - 1, 0).bit_length())


def _shared(key, shape, dtype):
    """Whether a draw of `shape` may come from a flat draw: float32 (as Keras keeps weights) from a
    concrete key of the default Threefry."""
    if isinstance(key, jax.core.Tracer) or not jax.config.jax_threefry_partitionable:
        return False
    if jax.config.jax_default_prng_impl != "threefry2x32" or jax.dtypes.issubdtype(
        key.dtype, jax.dtypes.prng_key
    ):
        return False
    if not all(isinstance(n, (int, np.integer)) for n in shape):
        return False
    return 0 < math.prod(shape) <= LARGEST and jax.numpy.dtype(dtype) == jax.numpy.float32


def _draw(distribution, key, shape, dtype, **bounds):
    """`distribution(key, shape=shape, dtype=dtype, **bounds)`, from a flat draw where that is the same."""
    shape = tuple(shape)
    if not _shared(key, shape, dtype):
        return distribution(key, shape=shape, dtype=dtype, **bounds)
    size = math.prod(shape)
    flat = distribution(key, shape=(bucket(size),), dtype=dtype, **bounds)
    return jax.device_put(np.asarray(flat)[:size].reshape(shape))  # jnp.asarray would compile per shape


def install():
    """Route Keras' JAX `normal`, `uniform` and `truncated_normal` through `_draw`: Keras' own code,
    the draw aside. A Keras without these functions keeps its own."""
    from keras.src.backend.config import floatx
    from keras.src.backend.jax import random

    if not all(hasattr(random, name) for name in ("normal", "uniform", "truncated_normal", "jax_draw_seed")):
        return

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        dtype = dtype or floatx()
        sample = _draw(jax.random.normal, random.jax_draw_seed(seed), shape, dtype)
        return sample * stddev + mean

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        dtype = dtype or floatx()
        return _draw(
            jax.random.uniform, random.jax_draw_seed(seed), shape, dtype, minval=minval, maxval=maxval
        )

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        dtype = dtype or floatx()
        sample = _draw(
            jax.random.truncated_normal, random.jax_draw_seed(seed), shape, dtype, lower=-2.0, upper=2.0
        )
        return sample * stddev + mean

    random.normal, random.uniform, random.truncated_normal = normal, uniform, truncated_normal
