"""Where groups train: this process, or worker processes. Ray tasks are the third place
(`harness.training.cluster`). Each place has one small interface: `slots` (groups at once),
`check(specs)`, `submit(group)`, `results()` (yields (group, event, value) as they come) and
`close(kill)`. Events: ("run", (row, history)) per run, then one of ("done", None),
("unsupported", reason) or ("failed", error text) that ends the group.

A worker process imports Keras once and takes many groups; it never imports the user's
`__main__` (a script without a main guard, a script piped to `python -`, a notebook all work),
dies with the main process however that ends, and leaves stopping to it.
"""

import atexit
import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading

from harness.errors import HarnessError
from harness.training.groups import Unsupported

# TensorFlow keeps ~4 MB per fitted model that neither clear_session nor gc frees
# (tensorflow#61791): its workers are replaced after this many runs. JAX frees them.
RUNS_PER_WORKER = {"tensorflow": 10, "torch": 10}


def work(group, put, on_epoch=None):
    """Train `group`, reporting its events through `put` (the body of every place)."""
    try:
        for made in group.train(on_epoch):
            put(("run", made))
        put(("done", None))
    except Unsupported as exc:
        put(("unsupported", str(exc)))
    except Exception as exc:
        put(("failed", f"{type(exc).__name__}: {exc}"))


def check(specs, backend=None):
    """Check `specs` against Keras on `backend` in this process: None, or the problem as text."""
    keras_here(backend)
    from harness.training import models

    try:
        models.check_specs(specs)
    except HarnessError as exc:
        return str(exc)
    return None


def keras_here(backend):
    """Bring up Keras in this process on `backend` unless it is up already; whether it runs on it.
    The environment keeps the user's backend for workers started later."""
    if "keras" not in sys.modules:
        saved = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = backend
        try:
            from harness.training import backend as _  # noqa: F401
        finally:
            os.environ.pop("KERAS_BACKEND") if saved is None else os.environ.update(KERAS_BACKEND=saved)
        if backend == "jax":
            from harness.training import vectorized

            vectorized.enable_compile_cache()  # before the spec check: its eager ops compile too
    return sys.modules["keras"].backend.backend() == backend


_threads = []  # this process's training threads


def training():
    """Whether a training thread of this process still runs (a group dropped by Ctrl-C)."""
    return any(thread.is_alive() for thread in _threads)


@atexit.register
def _end_before_teardown():
    """Python's teardown aborts the process under a thread still inside XLA or TensorFlow: end first."""
    if training():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


class Here:
    """This process, one group at a time, trained in a thread so that Ctrl-C is noticed at once
    (a group in flight is then dropped: it trains again next time)."""

    slots = 1

    def __init__(self, backend, on_epoch=None):
        self.backend, self.on_epoch, self.waiting = backend, on_epoch, []

    def check(self, specs):
        return check(specs, self.backend)

    def submit(self, group):
        self.waiting.append(group)

    def results(self):
        while self.waiting:
            group, events = self.waiting.pop(0), queue.Queue()
            thread = threading.Thread(target=work, args=(group, events.put, self.on_epoch), daemon=True)
            _threads[:] = [t for t in _threads if t.is_alive()] + [thread]
            thread.start()
            event = ("run",)
            while event[0] == "run":
                event = events.get()
                yield (group, *event)

    def close(self, kill=False):
        self.waiting = []


PR_SET_PDEATHSIG = 1


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


def _worker(backend, tasks, events, max_runs, lifeline):
    """A worker process: Keras on `backend`, then groups until told to stop or `max_runs` are done."""
    die_with_parent(lifeline)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the main process decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # how the main process stops a worker
    os.environ["KERAS_BACKEND"] = backend
    done = 0
    while max_runs is None or done < max_runs:
        task = tasks.get()
        if task is None:
            break
        key, what = task
        events.put((key, "started", os.getpid()))
        if key == "check":
            events.put((key, "done", check(what, backend)))
            continue
        work(what, lambda event: events.put((key, *event)))
        done += len(what.runs)
    events.put((None, "retired", os.getpid()))


@contextlib.contextmanager
def _main_hidden():
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


def _context(backend):
    """On TensorFlow a fork server imports the harness (and TensorFlow, ~10 s here) once, and every
    worker, replacements included, is a fork of it. Other backends (and HARNESS_SPAWN=1) start
    fresh processes."""
    if backend != "tensorflow" or os.environ.get("HARNESS_SPAWN"):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["harness.training.per_run"])
    return context


def warm_up(backend):
    """Start the fork server now (if workers on `backend` come from one), so that TensorFlow imports
    there while this process still reads specs and stored results."""
    if _context(backend).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        with _main_hidden():
            forkserver.ensure_running()


class Pool:
    """Worker processes on one task queue; a worker that retires after `max_runs` is replaced, and
    one that dies fails the group it held. (concurrent.futures' max_tasks_per_child can deadlock
    on Python 3.11, so not that.)"""

    def __init__(self, jobs, backend):
        self.context = _context(backend)
        self.tasks, self.events = self.context.Queue(), self.context.Queue()
        self.lifeline, self._lifeline_end = self.context.Pipe(duplex=False)  # this process keeps the end
        self.backend, self.slots, self.workers = backend, jobs, {}
        self.groups, self.held, self.waiting = {}, {}, 0  # key -> group; pid -> key; tasks not taken
        self.submitted = 0
        for _ in range(jobs):
            self._start()

    def _start(self):
        args = (self.backend, self.tasks, self.events, RUNS_PER_WORKER.get(self.backend), self.lifeline)
        process = self.context.Process(target=_worker, args=args, daemon=True)
        with _main_hidden():
            process.start()
        self.workers[process.pid] = process

    def check(self, specs):
        self.waiting += 1
        self.tasks.put(("check", specs))
        return next(value for key, event, value in self._events() if key == "check")

    def submit(self, group):
        self.submitted += 1
        key = self.submitted
        self.groups[key], self.waiting = group, self.waiting + 1
        self.tasks.put((key, group))

    def results(self):
        events = self._events()
        while self.groups:
            key, event, value = next(events)
            yield self.groups[key], event, value
            if event != "run":
                del self.groups[key]

    def _events(self):
        while True:
            try:
                key, event, value = self.events.get(timeout=1.0)
            except queue.Empty:
                for pid, process in list(self.workers.items()):
                    if not process.is_alive():
                        del self.workers[pid]
                        if pid in self.held:
                            yield self.held.pop(pid), "failed", f"RuntimeError: worker process {pid} died " \
                                f"(exit code {process.exitcode})"
                        self._replace()
                continue
            if event == "started":
                self.held[value], self.waiting = key, self.waiting - 1
            elif event == "retired":
                self.workers.pop(value).join()
                self._replace()
            else:
                if event != "run":
                    self.held = {pid: k for pid, k in self.held.items() if k != key}
                yield key, event, value

    def _replace(self):
        if self.waiting:  # only while tasks wait in the queue
            self._start()

    def close(self, kill=False):
        if kill:
            self.tasks.cancel_join_thread()  # tasks nobody will take must not block this process's exit
        for process in self.workers.values():
            process.terminate() if kill else self.tasks.put(None)
        for process in self.workers.values():
            process.join(timeout=5)
