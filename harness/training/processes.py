"""Workers: processes that start without the user's main module and die with the main process, and
this process's training threads, which it outlives only by ending at once."""

import atexit
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
THREADS = []  # this process's training threads (places.Pool here)


@atexit.register
def exit_if_training(code=130):
    """End now with `code` if a training thread still runs (a group dropped by Ctrl-C): Python's
    teardown would abort the process under a thread inside XLA or TensorFlow."""
    if any(thread.is_alive() for thread in THREADS):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@contextlib.contextmanager
def main_hidden():
    """Start processes without telling them the main module: multiprocessing would import it again
    in each (a script's top level would run there), or fail where it has no file (`python -`)."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def context(backend):
    """On TensorFlow a fork server imports the harness (and TensorFlow, ~10 s here) once, and every
    worker, replacements included, is a fork of it. Other backends (and HARNESS_SPAWN=1) start
    fresh processes."""
    if backend != "tensorflow" or os.environ.get("HARNESS_SPAWN"):
        return multiprocessing.get_context("spawn")
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(["harness.training.per_run"])
    return forkserver


def warm_up(backend):
    """Start the fork server now (if workers on `backend` come from one), so that TensorFlow imports
    there while this process still reads specs and stored results."""
    if context(backend).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        with main_hidden():
            forkserver.ensure_running()


def die_with_parent(lifeline=None):
    """End this process when the main process ends, however it ends (SIGKILL included).

    A fork server's workers are children of the fork server, which outlives the main process
    while they hold its pipe: such a worker waits for end-of-file on `lifeline`, a pipe whose
    only writing end the main process holds. Besides, Linux's parent-death signal, and a
    thread that notices the parent id change where that is unavailable."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the signal was set
        os._exit(1)

    def watch(wait):
        try:
            wait()
        except (EOFError, OSError):
            pass
        os._exit(1)

    def parent_gone():
        while os.getppid() == parent:
            threading.Event().wait(1.0)

    threading.Thread(target=watch, args=(parent_gone,), daemon=True).start()
    if lifeline is not None:  # nothing is ever sent: recv returns only at end-of-file
        threading.Thread(target=watch, args=(lifeline.recv,), daemon=True).start()


def as_worker(lifeline, backend):
    """Set up a worker process: die with the main process, leave stopping to it, Keras on `backend`."""
    die_with_parent(lifeline)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the main process decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # how the main process stops a worker
    os.environ["KERAS_BACKEND"] = backend
