"""Schedules runs: in this process (`--jobs 1`) or in long-lived worker processes.

Workers import Keras once and take many runs; the main process never imports Keras when
it has workers, writes every finished run at once and counts progress. Other invocations
may store into the same folders at the same time (harness.results locks each folder). Ctrl-C,
SIGTERM and SIGHUP stop the workers and keep every run already written; a worker dies with
its parent however the parent dies.
"""

import ctypes
import dataclasses
import multiprocessing
import os
import signal
import threading

from harness import results
from harness.errors import HarnessError

# A worker is replaced after this many runs: TensorFlow keeps ~4 MB per fitted model that
# neither clear_session nor gc frees (tensorflow#61791), so 10 runs stay within ~40 MB.
# JAX frees them.
RUNS_PER_WORKER = {"tensorflow": 10, "jax": None, "torch": 10}


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What every run of one sweep shares, whichever executor runs it."""

    root: str  # where results are stored
    jobs: int = None  # worker processes (Ray: CPUs of a local Ray); None: the number of cores
    backend: str = None  # Keras backend; None: $KERAS_BACKEND, else tensorflow
    fast: bool = True  # the harness's input pipeline (False: plain numpy, as the article)
    fail_fast: bool = False  # stop at the first failed run
    verbose: bool = False  # Keras' own epoch lines (one process)
    progress: object = None  # a harness.progress.Progress, or None
    force: bool = False  # re-run and store runs already stored


def plan(specs, root, force=False):
    """[(spec, seed, fold)] still to run, and how many stored runs were skipped.

    fold is None unless the spec has `data.cv`; then every seed runs on folds 0..K*R-1."""
    from harness.data import folds

    todo, skipped = [], 0
    for spec in specs:
        results.check_readable(root, spec.name)  # a damaged file stops us before anything trains
        done = set() if force else results.finished_runs(root, spec.name, spec.hash)
        for seed in spec.seeds:
            for fold in folds(spec.data):
                if (seed, fold) in done:
                    skipped += 1
                else:
                    todo.append((spec, seed, fold))
    return todo, skipped


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

    def watch_parent():
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os._exit(1)

    def watch_lifeline():
        try:
            lifeline.recv()  # nothing is ever sent: returns only at end-of-file
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    if lifeline is not None:
        threading.Thread(target=watch_lifeline, name="lifeline-watch", daemon=True).start()


def _worker(backend, tasks, outcomes, max_runs, lifeline=None):
    """A worker process: import Keras once, take tasks until told to stop or `max_runs` are done."""
    die_with_parent(lifeline)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the main process decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # how the main process stops a worker
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    from harness import runner

    done = 0
    while max_runs is None or done < max_runs:
        task = tasks.get()
        if task is None:
            break
        key, kind, payload = task
        outcomes.put(("started", key, os.getpid()))
        outcomes.put(("result", key, runner.work(kind, payload)))
        if kind == "run":
            done += 1
    outcomes.put(("retired", None, os.getpid()))


def _context(backend):
    """Where workers come from. On TensorFlow a fork server imports the harness (and TensorFlow,
    ~10 s here) once, and every worker, replacements included, is a fork of it. It runs no
    TensorFlow op before forking. Other backends (and HARNESS_SPAWN=1) start fresh processes."""
    if (backend or os.environ.get("KERAS_BACKEND", "tensorflow")) != "tensorflow" or os.environ.get(
        "HARNESS_SPAWN"
    ):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["harness.runner"])
    return context


def warm_up(jobs=None, backend=None):
    """Start the fork server now (when workers will come from one), so that TensorFlow imports
    there while this process still reads specs and stored results."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    if (jobs or os.cpu_count() or 1) > 1 and _context(backend).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class _Pool:
    """Worker processes on one task queue; a worker that retires after `max_runs` is replaced.

    (concurrent.futures' max_tasks_per_child can deadlock on Python 3.11, so not that.)
    """

    def __init__(self, jobs, backend, max_runs):
        self.context = _context(backend)
        self.tasks, self.outcomes = self.context.Queue(), self.context.Queue()
        self.lifeline, self._lifeline_end = self.context.Pipe(duplex=False)  # this process keeps the end
        self.backend, self.max_runs, self.workers = backend, max_runs, {}
        self.running = {}  # pid -> key of the task it took
        self.submitted = self.started = 0
        for _ in range(jobs):
            self._start()

    def _start(self):
        process = self.context.Process(
            target=_worker,
            args=(self.backend, self.tasks, self.outcomes, self.max_runs, self.lifeline),
            daemon=True,
        )
        process.start()
        self.workers[process.pid] = process

    def submit(self, key, kind, payload):
        self.submitted += 1
        self.tasks.put((key, kind, payload))

    def _replace(self):
        if self.submitted > self.started:  # only while tasks wait in the queue
            self._start()

    def results(self, count):
        """Yield (key, outcome) for `count` tasks; a worker that dies fails the task it held."""
        import queue

        while count:
            try:
                event, key, value = self.outcomes.get(timeout=1.0)
            except queue.Empty:
                for pid, process in list(self.workers.items()):
                    if not process.is_alive():
                        del self.workers[pid]
                        if pid in self.running:
                            count -= 1
                            yield (
                                self.running.pop(pid),
                                RuntimeError(f"worker process {pid} died (exit code {process.exitcode})"),
                            )
                        self._replace()
                continue
            if event == "started":
                self.running[value] = key
                self.started += 1
            elif event == "retired":
                self.workers.pop(value).join()
                self._replace()
            else:
                self.running = {pid: k for pid, k in self.running.items() if k != key}
                count -= 1
                yield key, value

    def close(self, kill=False):
        if kill:
            self.tasks.cancel_join_thread()  # tasks nobody will take must not block this process's exit
        for process in self.workers.values():
            if kill:
                process.terminate()
            else:
                self.tasks.put(None)
        for process in self.workers.values():
            process.join(timeout=5)


def run(
    specs,
    root,
    jobs=None,
    backend=None,
    force=False,
    verbose=False,
    progress=None,
    fast=True,
    fail_fast=False,
    executor="local",
    address=None,
):
    """Run every (spec, seed, fold) not yet stored under `root` (`fail_fast`: stop at the first failed run); returns the rows of failed runs.

    `executor="ray"` runs them as Ray tasks (harness.ray_executor) on the cluster at `address`
    ($RAY_ADDRESS) or on a local Ray with `jobs` CPUs; they are stored here the same way."""
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise HarnessError(f"jobs={jobs!r}: must be at least 1 (1 runs in this process)")
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    options = RunOptions(root, jobs, backend, fast, fail_fast, verbose, progress, force)
    todo, skipped = plan(specs, root, force)
    for spec in specs:
        results.check_writable(root, spec.name)
        results.remove_temp_files(root, spec.name)  # a killed process's, never a live one's
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    if verbose:
        jobs = 1  # Keras' epoch lines from several processes would interleave
    # progress starts after the Keras check, so a bad spec prints its error and nothing else
    start = (lambda: progress.start(len(todo), skipped)) if progress else (lambda: None)
    if todo:
        pending = list({spec.name: spec for spec, _, _ in todo}.values())
        if executor == "ray":
            from harness import ray_executor

            backend_name = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
            store = lambda spec, row, history: _store(root, spec, row, history, progress, force)  # noqa: E731
            finished = ray_executor.run(
                todo, pending, options, start, store, address, max_calls=RUNS_PER_WORKER.get(backend_name)
            )
        else:
            local = dataclasses.replace(options, jobs=jobs)
            finished = (
                _in_process(todo, pending, local, start)
                if jobs == 1
                else _in_workers(todo, pending, local, start)
            )
    else:
        start()
        finished = []
    if progress:
        progress.finish()
    return [row for row in finished if row["status"] == "failed"]


def _store(root, spec, row, history, progress, force=False):
    """Store a finished run with its spec.json; unless `force`, a run of the same seed and spec that
    another invocation stored meanwhile is kept instead (returned), so no run is stored twice."""
    row = results.save_run(root, row, history, spec=spec, keep_finished=not force)
    if progress:
        progress.done(row)
    return row


def _in_process(todo, specs, options, start):
    from harness import runner

    progress = options.progress
    runner.check_specs(specs)
    start()
    finished = []
    for spec, seed, fold in todo:
        theirs = (
            None if options.force else results.finished_run(options.root, spec.name, spec.hash, seed, fold)
        )
        if theirs is not None:  # another invocation stored it since planning: not run twice
            finished.append(theirs)
            if progress:
                progress.done(theirs)
            continue
        if progress:
            progress.begin(spec, seed, fold)
        on_epoch = progress.epoch if progress else None
        try:
            row, history = runner.run_seed(
                spec, seed, fold=fold, verbose=options.verbose, on_epoch=on_epoch, fast=options.fast
            )
        except Exception as exc:
            row, history = runner.failed_row(spec, seed, exc, fold), []
        finished.append(_store(options.root, spec, row, history, progress, options.force))
        if options.fail_fast and row["status"] == "failed":
            break
    return finished


def _in_workers(todo, specs, options, start):
    backend_name = options.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    pool = _Pool(options.jobs, options.backend, RUNS_PER_WORKER.get(backend_name))
    progress, fail_fast = options.progress, options.fail_fast
    finished = []
    try:
        pool.submit("check", "check", specs)
        for _, problem in pool.results(1):
            if problem:
                raise HarnessError(str(problem))
        start()
        for key, (spec, seed, fold) in enumerate(todo):
            pool.submit(key, "run", (spec, seed, fold, options.fast))
        if progress:
            progress.running(options.jobs)
        for key, outcome in pool.results(len(todo)):
            spec, seed, fold = todo[key]
            row, history = (
                (results.failed_row(spec, seed, outcome, fold), [])
                if isinstance(outcome, Exception)
                else outcome
            )
            finished.append(_store(options.root, spec, row, history, progress, options.force))
            if fail_fast and row["status"] == "failed":
                break  # runs in flight are dropped and queued ones never start: both run next time
    except BaseException:
        pool.close(kill=True)
        raise
    pool.close(kill=fail_fast and any(r["status"] == "failed" for r in finished))
    return finished
