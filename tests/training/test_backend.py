"""harness.training.backend: the deterministic column says whether the run computed on one thread;
the harness's own process freezes what importing Keras made and loads pyplot only when used."""

import gc
import subprocess
import sys
from pathlib import Path

from harness.training import backend

ROOT = Path(__file__).resolve().parents[2]


def test_single_threaded_by_default_and_not_when_the_environment_says_more(monkeypatch):
    assert backend.single_threaded()  # configure_environment set one thread
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert not backend.single_threaded()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    assert not backend.single_threaded()


def _python(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_only_the_harness_own_process_freezes_what_importing_keras_made():
    """In a script or notebook (this process) nothing is frozen; in `python -m harness` what the
    imports made is left out of the garbage collector's walks, and everything is at exit."""
    assert gc.get_freeze_count() == 0
    own = "from harness import training; training.OWN_PROCESS = True; import gc; "
    assert _python(own + "import harness.training.backend; print(gc.get_freeze_count() > 10**4)") == ["True"]
    at_exit = (
        "import atexit, gc, runpy, sys; atexit.register(lambda: print(gc.get_freeze_count() > 0)); "
        "sys.argv = ['harness', 'list']; runpy.run_module('harness', run_name='__main__')"
    )
    assert _python(at_exit)[-1] == "True"


def test_only_the_harness_own_process_loads_pyplot_when_something_uses_it():
    """Keras imports matplotlib.pyplot; in `python -m harness` it loads on first use, and works then."""
    assert type(sys.modules["matplotlib.pyplot"]).__name__ == "module"
    own = "from harness import training; training.OWN_PROCESS = True; import sys, harness.training.backend; "
    figure = "'matplotlib.figure' in sys.modules"
    check = f"plt = sys.modules['matplotlib.pyplot']; print(type(plt).__name__, {figure}); "
    used = f"import matplotlib.pyplot; print(callable(plt.figure), type(plt).__name__, {figure})"
    assert _python(own + check + used) == ["_LazyModule", "False", "True", "module", "True"]
