"""Where groups train: worker processes, or a thread of this process (`Pool`); Ray tasks are the other
place (`cluster.RayTasks`). One interface: `slots` (groups at once), `check(specs)` (a spec problem, a
HarnessError returned so that it crosses from a worker, or None), `submit(group)`, `results()`
(yields (group, event, value) as they come), `close(kill)`. Events: ("run", (row, history)) per
run, then ("done", None), ("unsupported", reason) or ("failed", error text), which ends the group.
"""

import atexit
import math
import multiprocessing
import os
import sys
import threading
from multiprocessing import connection

from harness.errors import HarnessError
from harness.training import processes
from harness.training.shapes import Unsupported

# TensorFlow keeps ~4 MB per fitted model that neither clear_session nor gc frees
# (tensorflow#61791): its workers are replaced after this many runs. JAX frees them.
RUNS_PER_WORKER = {"tensorflow": 10, "torch": 10}


def work(group, put, on_epoch=None):
    """Train `group`, reporting its events through `put`: the body of every place."""
    try:
        for made in group.train(on_epoch):
            put(("run", made))
        put(("done", None))
    except Unsupported as exc:
        put(("unsupported", str(exc)))
    except Exception as exc:
        put(("failed", f"{type(exc).__name__}: {exc}"))


def check(specs, backend):
    """Check `specs` against Keras on `backend` in this process: the first problem, or None."""
    keras_here(backend)
    from harness.training import models

    try:
        models.check_specs(specs)
    except HarnessError as exc:  # returned: from a worker it comes back pickled
        return exc


def keras_here(backend):
    """Bring up Keras here on `backend` unless it is up; whether it runs on `backend`. The
    environment keeps the user's backend for workers started later."""
    if "keras" not in sys.modules:
        saved = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = backend
        from harness.training import backend as _  # noqa: F401

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


def _worker(backend, pipe, lifeline=None, on_epoch=None):
    """A worker: Keras on `backend`, then what `pipe` brings (specs to check, or a group to train) until
    the main process closes it. A thread of this process (no `lifeline`) stops when its pipe breaks."""
    if lifeline is not None:
        processes.as_worker(lifeline, backend)
    try:
        while True:
            task = pipe.recv()
            pipe.send(check(task, backend)) if isinstance(task, list) else work(task, pipe.send, on_epoch)
    except (EOFError, OSError):
        return


def _death(worker):
    worker.join()
    code = getattr(worker, "exitcode", None)  # a thread has none
    return f"RuntimeError: worker {getattr(worker, 'pid', worker.name)} died (exit code {code})"


class Pool:
    """Workers, each on a pipe of its own, that train many groups: processes, each importing Keras once
    (one is replaced after RUNS_PER_WORKER runs, one that dies fails the group it held), or `here`, a
    thread of this process, so that Ctrl-C is noticed at once (a group in flight is then dropped: it
    trains again next time)."""

    def __init__(self, jobs, backend, here=False, on_epoch=None):
        self.backend, self.slots, self.here, self.on_epoch = backend, jobs, here, on_epoch
        self.context = multiprocessing if here else processes.context(backend)
        if not here:
            self.lifeline, self._lifeline_end = self.context.Pipe(duplex=False)  # this process keeps the end
        self.workers = {}  # a worker's pipe: [its process or thread, the group it trains or None, its runs]
        for _ in range(jobs):
            self._start()

    def _start(self):
        mine, theirs = self.context.Pipe()
        if self.here:
            args = (self.backend, theirs, None, self.on_epoch)
            worker = threading.Thread(target=_worker, args=args, daemon=True)
            _threads.append(worker)
            worker.start()
        else:
            args = (self.backend, theirs, self.lifeline)
            worker = self.context.Process(target=_worker, args=args, daemon=True)
            with processes.main_hidden():
                worker.start()
            theirs.close()  # the worker holds the only other end: its death is end-of-file on `mine`
        self.workers[mine] = [worker, None, 0]

    def _replace(self, pipe):
        """Start a worker in place of the one on `pipe`, which ends (if it has not) as its pipe closes."""
        process = self.workers.pop(pipe)[0]
        pipe.close()
        self._start()
        return process

    def check(self, specs):
        pipe = next(iter(self.workers))
        pipe.send(list(specs))
        try:
            return pipe.recv()
        except EOFError:
            return HarnessError(f"checking the specs: {_death(self._replace(pipe))}")

    def submit(self, group):
        pipe, worker = next((pipe, worker) for pipe, worker in self.workers.items() if worker[1] is None)
        worker[1] = group
        try:
            pipe.send(group)
        except OSError:  # it died: results() fails the group
            pass

    def results(self):
        while any(worker[1] for worker in self.workers.values()):
            for pipe in connection.wait(list(self.workers)):
                worker = self.workers[pipe]
                group = worker[1]
                try:
                    event, value = pipe.recv()
                except EOFError:
                    event, value = "failed", _death(self._replace(pipe))
                else:
                    worker[2] += event == "run"
                    if event != "run":
                        worker[1] = None
                        if not self.here and worker[2] >= RUNS_PER_WORKER.get(self.backend, math.inf):
                            self._replace(pipe)
                if group:  # None: an idle worker died, and is replaced
                    yield group, event, value

    def close(self, kill=False):
        """End the workers: at once with `kill`. A thread cannot be killed: an idle one ends as its pipe
        closes, one still training is left to the exit (`training`)."""
        for pipe, (worker, _, _) in self.workers.items():
            worker.terminate() if kill and not self.here else pipe.close()
        for worker, group, _ in self.workers.values():
            worker.join(timeout=(0 if group else 1) if self.here and kill else 5)
