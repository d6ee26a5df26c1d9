"""The one way the package brings up Keras: `from harness.backend import keras`.

Before Keras is imported, the backend's environment is set: one compute thread per device (runs
go in parallel across processes, or across a JAX process's devices, and a seed gives the same
numbers alone or beside others), as many JAX CPU devices as cores (the vectorized trainer splits a
group's runs over them), TensorFlow's C++ log threshold, and Keras' Python warnings off. Environment variables
alone cannot silence TensorFlow: abseil writes "All log messages before absl::InitializeLog()"
and the oneDNN notice to file descriptor 2 before it reads any threshold. So the import runs
with descriptor 2 captured, and what it wrote is passed on except the known start-up lines:
a real error still shows. On JAX, compiled programs are kept between invocations, and initial
weights are drawn without a compile per weight shape (`draws`).
"""

import gc
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings

from harness import training

THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
# Lines TensorFlow, XLA and abseil print while importing, on every CPU or on some; nothing to act on.
START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|TF_ENABLE_ONEDNN_OPTS|This TensorFlow binary is optimized|To enable the following instructions"
    r"|rebuild TensorFlow with the appropriate compiler flags|Unable to register cu(DNN|FFT|BLAS)"
    r"|computation placer already registered|TF-TRT Warning|Could not find cuda drivers"
    r"|cuda_(dnn|fft|blas|executor|driver)|Unable to register .* factory|Attempting to register factory"
    r"|absl::InitializeLog|An NVIDIA GPU may be present|Platform 'METAL' is experimental"
)
# abseil's own line prefix: severity, date, time, thread, file:line]
ABSEIL_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+\s+\S+:\d+\]")


def configure_environment():
    """Threads, log levels and XLA flags for the backend; leaves values the user set alone."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("XLA_FLAGS", XLA_ONE_THREAD)
    os.environ.setdefault("JAX_NUM_CPU_DEVICES", str(os.cpu_count() or 1))
    warnings.filterwarnings("ignore", module="keras")
    warnings.filterwarnings("ignore", module="tensorflow")
    warnings.filterwarnings("ignore", module="jax")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("jax").setLevel(logging.ERROR)


def is_noise(line):
    """True for a start-up line of TensorFlow/abseil that says nothing a user can act on."""
    if not line.strip():
        return True
    if START_UP_NOISE.search(line):
        return True
    return bool(ABSEIL_LINE.match(line)) and line[0] in "IW"


def _import_with_fd2_captured(import_):
    """Run `import_()` with descriptor 2 in a temporary file; pass on all but start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return import_()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if not is_noise(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def _import_keras():
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow  # noqa: F401  (its start-up lines come here, while captured)
    if keras.backend.backend() == "jax":
        from harness.training import draws

        _cache_compiled_programs()
        draws.install()
    return keras


def _cache_compiled_programs():
    """Let JAX keep every compiled program between invocations, in $HARNESS_CACHE/jax, else
    ~/.cache/harness/jax (an unwritable folder only costs compile time)."""
    import jax

    root = os.environ.get("HARNESS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "harness")
    folder = os.path.join(root, "jax")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def bring_up():
    """Keras on $KERAS_BACKEND (default tensorflow), quiet and on one thread; imported once."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    configure_environment()
    if not training.OWN_PROCESS:
        return _import_with_fd2_captured(_import_keras)
    lazily = _OnFirstUse(LAZY_MODULES)
    sys.meta_path.insert(0, lazily)
    try:
        imported = _import_with_fd2_captured(_import_keras)
    finally:
        sys.meta_path.remove(lazily)
    # the modules live as long as the process: full collections need not walk them again
    # (the doctor spent 2.0 s collecting garbage, 1.0 s once they were frozen)
    gc.freeze()
    return imported


# Keras imports these for its image galleries (0.25-0.45 s); the harness draws on Agg without them
LAZY_MODULES = ("matplotlib.pyplot", "matplotlib.patches")


class _OnFirstUse(importlib.abc.MetaPathFinder):
    """Finds `names` as the import system would, but loads each on its first attribute access
    (`importlib.util.LazyLoader`)."""

    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def single_threaded():
    """Whether this process computes on one thread, as configure_environment sets it unless the
    environment said otherwise; with one thread and its seed a run repeats exactly."""
    if any(os.environ.get(variable) != "1" for variable in THREAD_VARIABLES):
        return False
    if keras.backend.backend() == "jax":
        return "intra_op_parallelism_threads=1" in os.environ.get("XLA_FLAGS", "")
    if keras.backend.backend() == "torch":
        import torch

        return torch.get_num_threads() == 1
    return True


def name():
    """The backend Keras runs on in this process."""
    return keras.backend.backend()


keras = bring_up()
