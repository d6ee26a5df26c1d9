"""Where groups train: worker processes, or a thread of this process (`Pool`); Ray tasks are the other
place (`cluster.RayTasks`). One interface: `full` (no room for another group), `check(specs)` (the
first spec problem, returned so that it crosses from a worker, or None), `submit(group)`, `results()`
(yields what `work` returns, after the group, as each group ends) and `close(kill)`.
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
_threads = []  # this process's training threads


def work(group, on_epoch=None):
    """Train `group`, the body of every place: ([(row, history)] of the runs it made, how it ended:
    "done", "unsupported" or "failed", and why)."""
    made = []
    try:
        for run in group.train(on_epoch):
            made.append(run)
        return made, "done", None
    except Unsupported as exc:
        return made, "unsupported", str(exc)
    except Exception as exc:
        return made, "failed", f"{type(exc).__name__}: {exc}"


def check(specs):
    """The first problem Keras finds in `specs`, or None."""
    from harness.training import models

    try:
        models.check_specs(specs)
    except HarnessError as exc:
        return exc


def keras_here(backend):
    """Bring up Keras here on `backend` unless it is up; whether it runs on `backend`. The
    environment keeps the user's backend for workers started later."""
    if "keras" not in sys.modules:
        saved = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = backend
        from harness.training import backend as _  # noqa: F401

        os.environ.pop("KERAS_BACKEND") if saved is None else os.environ.update(KERAS_BACKEND=saved)
    return sys.modules["keras"].backend.backend() == backend


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
            pipe.send(check(task) if isinstance(task, list) else work(task, on_epoch))
    except (EOFError, OSError):
        return


class Pool:
    """Workers, each on a pipe of its own, that train many groups: processes, each importing Keras once
    (one is replaced after RUNS_PER_WORKER runs, one that dies fails the group it held), or `here`, a
    thread of this process, so that Ctrl-C is noticed at once (a group in flight is then dropped: it
    trains again next time)."""

    def __init__(self, jobs, backend, here=False, on_epoch=None):
        self.backend, self.here, self.on_epoch = backend, here, on_epoch
        self.context = multiprocessing if here else processes.context(backend)
        if not here:
            self.lifeline, self._lifeline_end = self.context.Pipe(duplex=False)  # this process keeps the end
        self.workers = {}  # a worker's pipe: [its process or thread, the group it trains or None, its runs]
        for _ in range(jobs):
            self._start()

    def _start(self):
        mine, theirs = self.context.Pipe()
        make, lifeline = (threading.Thread, None) if self.here else (self.context.Process, self.lifeline)
        worker = make(target=_worker, args=(self.backend, theirs, lifeline, self.on_epoch), daemon=True)
        if self.here:
            _threads.append(worker)
            worker.start()
        else:
            with processes.main_hidden():
                worker.start()
            theirs.close()  # the worker holds the only other end: its death is end-of-file on `mine`
        self.workers[mine] = [worker, None, 0]

    def _replace(self, pipe):
        """Start a worker in place of the one on `pipe`, which ends (if it has not) as its pipe closes."""
        worker = self.workers.pop(pipe)[0]
        pipe.close()
        self._start()
        return worker

    def _died(self, pipe):
        """The error of a group whose worker died: it is replaced."""
        worker = self._replace(pipe)
        worker.join()
        code = getattr(worker, "exitcode", None)  # a thread has none
        return f"RuntimeError: worker {getattr(worker, 'pid', worker.name)} died (exit code {code})"

    @property
    def full(self):
        return all(group for _, group, _ in self.workers.values())

    def check(self, specs):
        pipe = next(iter(self.workers))
        pipe.send(list(specs))
        try:
            return pipe.recv()
        except EOFError:
            return HarnessError(f"checking the specs: {self._died(pipe)}")

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
                group, worker[1] = worker[1], None
                try:
                    made, end, why = pipe.recv()
                except EOFError:
                    made, end, why = [], "failed", self._died(pipe)
                else:
                    worker[2] += len(made)
                    if not self.here and worker[2] >= RUNS_PER_WORKER.get(self.backend, math.inf):
                        self._replace(pipe)
                if group:  # None: an idle worker died, and is replaced
                    yield group, made, end, why

    def close(self, kill=False):
        """End the workers: at once with `kill`. A thread cannot be killed: an idle one ends as its pipe
        closes, one still training is left to the exit (`training`)."""
        for pipe, (worker, _, _) in self.workers.items():
            worker.terminate() if kill and not self.here else pipe.close()
        for worker, group, _ in self.workers.values():
            worker.join(timeout=(0 if group else 1) if self.here and kill else 5)
