"""Where groups train: this process (`Here`) or worker processes (`Pool`); Ray tasks are the third
(`cluster.RayTasks`). One interface: `slots` (groups at once), `check(specs)` (a spec problem, a
HarnessError returned so that it crosses from a worker, or None), `submit(group)`, `results()`
(yields (group, event, value) as they come), `close(kill)`. Events: ("run", (row, history)) per
run, then ("done", None), ("unsupported", reason) or ("failed", error text), which ends the group.
"""

import atexit
import os
import queue
import sys
import threading

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


class Here:
    """This process, a group at a time, trained in a thread so that Ctrl-C is noticed at once (a
    group in flight is then dropped: it trains again next time)."""

    slots = 1

    def __init__(self, backend, on_epoch=None):
        self.backend, self.on_epoch, self.waiting = backend, on_epoch, []

    def check(self, specs):
        return check(specs, self.backend)

    def submit(self, group):
        self.waiting.append(group)

    def results(self):
        while self.waiting:
            group, events, event = self.waiting.pop(0), queue.Queue(), ("run",)
            _threads.append(
                threading.Thread(target=work, args=(group, events.put, self.on_epoch), daemon=True)
            )
            _threads[-1].start()
            while event[0] == "run":
                event = events.get()
                yield (group, *event)

    def close(self, kill=False):
        self.waiting = []


def _worker(backend, tasks, events, max_runs, lifeline):
    """A worker process: Keras on `backend`, then the tasks sent to it, until its pipe closes or it has
    done `max_runs` runs (it says so first, so the main process sends it nothing more)."""
    processes.as_worker(lifeline, backend)
    pid, done = os.getpid(), 0
    while True:
        try:
            key, what = tasks.recv()
        except EOFError:
            return
        runs = 0 if key == "check" else len(what.runs)
        last = max_runs is not None and done + runs >= max_runs
        if last:
            events.put((pid, None, "retiring", None))
        if key == "check":
            events.put((pid, key, "done", check(what, backend)))
        else:
            work(what, lambda event, key=key: events.put((pid, key, *event)))
        done += runs
        if last:
            return


class Pool:
    """Worker processes, each on a pipe of its own: each imports Keras once and takes many groups; one
    that retires after RUNS_PER_WORKER runs is replaced, one that dies fails the group it held."""

    def __init__(self, jobs, backend):
        self.context, self.backend, self.slots = processes.context(backend), backend, jobs
        self.events = self.context.Queue()
        self.lifeline, self._lifeline_end = self.context.Pipe(duplex=False)  # this process keeps the end
        self.workers, self.idle, self.held, self.waiting, self.groups = {}, [], {}, [], {}
        self.retiring, self.count = set(), 0
        for _ in range(jobs):
            self._start()

    def _start(self):
        receive, send = self.context.Pipe(duplex=False)
        args = (self.backend, receive, self.events, RUNS_PER_WORKER.get(self.backend), self.lifeline)
        process = self.context.Process(target=_worker, args=args, daemon=True)
        with processes.main_hidden():
            process.start()
        receive.close()
        self.workers[process.pid] = (process, send)
        self.idle.append(process.pid)
        self._send()

    def _send(self, *task):
        """Queue `task` (key, what) and hand waiting tasks to idle workers."""
        self.waiting += [task] if task else []
        while self.waiting and self.idle:
            pid = self.idle.pop(0)
            try:
                self.workers[pid][1].send(self.waiting[0])
            except OSError:  # it died: _events replaces it
                continue
            self.held[pid] = self.waiting.pop(0)

    def check(self, specs):
        self._send("check", specs)
        event, value = next((event, value) for key, event, value in self._events() if key == "check")
        return HarnessError(f"checking the specs: {value}") if event == "failed" else value

    def submit(self, group):
        self.count += 1
        self.groups[self.count] = group
        self._send(self.count, group)

    def results(self):
        events = self._events()
        while self.groups:
            key, event, value = next(events)
            if key in self.groups:
                yield self.groups[key], event, value
                if event != "run":
                    del self.groups[key]

    def _events(self):
        """(key, event, value) from the workers; a worker that dies fails the task it held."""
        while True:
            try:
                pid, key, event, value = self.events.get(timeout=1.0)
            except queue.Empty:
                for pid in [pid for pid, (process, _) in self.workers.items() if not process.is_alive()]:
                    process, _ = self.workers.pop(pid)
                    self.idle = [p for p in self.idle if p != pid]
                    if pid in self.held:
                        died = f"RuntimeError: worker {pid} died (exit code {process.exitcode})"
                        yield self.held.pop(pid)[0], "failed", died
                    if pid not in self.retiring:
                        self._start()
                continue
            if event == "retiring":  # its last task: a new worker takes the next ones
                self.retiring.add(pid)
                self._start()
            elif event != "run":
                del self.held[pid]
                self.idle += [] if pid in self.retiring else [pid]
                self._send()
            if key is not None:
                yield key, event, value

    def close(self, kill=False):
        for process, send in self.workers.values():
            process.terminate() if kill else send.close()
        for process, _ in self.workers.values():
            process.join(timeout=5)
