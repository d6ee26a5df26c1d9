"""Where groups train: worker processes or a thread of this process (`Pool`), or Ray tasks
(`cluster.RayTasks`). Each has `full`, `check(specs)` (the first spec problem, or None), `submit(group)`,
`results()` (what `work` returns, as each group ends) and `close(kill)`.
"""

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


def work(group, on_epoch=None):
    """Train `group`: ([(row, history)] of the runs it made, "done", "unsupported" or "failed", why)."""
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
    """The first problem Keras finds in `specs` (returned, to cross from a worker), or None."""
    from harness.training import models

    try:
        models.check_specs(specs)
    except HarnessError as exc:
        return exc


def keras_here(backend):
    """Whether Keras runs here on `backend`, bringing it up if it is not up; workers started later
    still see the user's $KERAS_BACKEND."""
    if "keras" not in sys.modules:
        saved = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = backend
        from harness.training import backend as _  # noqa: F401

        os.environ.pop("KERAS_BACKEND") if saved is None else os.environ.update(KERAS_BACKEND=saved)
    return sys.modules["keras"].backend.backend() == backend


def _worker(backend, pipe, lifeline=None, on_epoch=None):
    """Check the specs or train the group each message brings, until the pipe closes."""
    if lifeline is not None:
        processes.as_worker(lifeline, backend)
    try:
        while True:
            task = pipe.recv()
            pipe.send(check(task) if isinstance(task, list) else work(task, on_epoch))
    except (EOFError, OSError):
        return


class Pool:
    """Workers on pipes of their own: processes that import Keras once (one is replaced after
    RUNS_PER_WORKER runs; one that dies fails its group), or `here` a thread, so that Ctrl-C is heard."""

    def __init__(self, jobs, backend, here=False, on_epoch=None):
        self.backend, self.here, self.on_epoch = backend, here, on_epoch
        self.context = multiprocessing if here else processes.context(backend)
        # a worker process dies when its end of the lifeline reads end-of-file: this process ended
        self.lifeline, self._lifeline_end = (None, None) if here else self.context.Pipe(duplex=False)
        self.workers = {}  # pipe: [its process or thread, the group it trains or None, its runs]
        for _ in range(jobs):
            self._start()

    def _start(self):
        mine, theirs = self.context.Pipe()
        make = threading.Thread if self.here else self.context.Process
        worker = make(target=_worker, args=(self.backend, theirs, self.lifeline, self.on_epoch), daemon=True)
        if self.here:
            processes.THREADS.append(worker)
            worker.start()
        else:
            with processes.main_hidden():
                worker.start()
            theirs.close()  # the worker holds the only other end: its death is end-of-file on `mine`
        self.workers[mine] = [worker, None, 0]

    def _replace(self, pipe):
        """Start a worker in place of the one on `pipe` (it ends as its pipe closes); returns that one."""
        worker = self.workers.pop(pipe)[0]
        pipe.close()
        self._start()
        return worker

    def _died(self, pipe):
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
        """End the workers, at once with `kill`; a thread still training is left to the exit."""
        for pipe, (worker, _, _) in self.workers.items():
            worker.terminate() if kill and not self.here else pipe.close()
        for worker, group, _ in self.workers.values():
            worker.join(timeout=(0 if group else 1) if self.here and kill else 5)
