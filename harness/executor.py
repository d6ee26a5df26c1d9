"""Schedules runs: in this process (`--jobs 1`) or in long-lived worker processes.

Workers import Keras once and take many runs; the main process never imports Keras when
it has workers, writes every finished run at once and counts progress. Other invocations
may store into the same folders at the same time (harness.results locks each folder). Ctrl-C,
SIGTERM and SIGHUP stop the workers and keep every run already written; a worker dies with
its parent however the parent dies.

With the vectorized engine (`engine="auto"`/`"vectorized"`), runs that compile to the same
program (harness.groups) train together as one JAX program (harness.engine): in this process
when there is one group or one job, else a group per worker task or Ray task; the rest take
the per-run path.
"""

import ctypes
import dataclasses
import multiprocessing
import os
import signal
import sys
import threading

from harness import groups, results
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
        if kind == "group":
            outcomes.put(("result", key, _run_group(payload)))
            continue
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
    engine="per-run",
):
    """Run every (spec, seed, fold) not yet stored under `root` (`fail_fast`: stop at the first
    failed run); returns the rows of failed runs.

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
    total, notes = len(todo), []

    def begin():  # after the Keras check: a bad spec prints its error and nothing else
        for note in notes:
            print(note, file=sys.stderr)
        if progress:
            progress.start(total, skipped)

    start = _once(begin)
    finished = []
    if todo and groups.choose(engine, backend, verbose) == "vectorized":
        chunks, todo, notes = groups.plan(todo)
        finished, fallback = _run_groups(
            chunks, root, jobs, progress, start, fail_fast, executor, address, force
        )
        todo += fallback
        if fail_fast and any(row["status"] == "failed" for row in finished):
            todo = []
    # Keras here may run on JAX for the groups; per-run runs on another backend go to a worker
    here = _keras_backend() in (None, backend or os.environ.get("KERAS_BACKEND", "tensorflow"))
    if todo:
        pending = list({spec.name: spec for spec, _, _ in todo}.values())
        jobs = max(1, min(jobs, len(todo)))
        if executor == "ray":
            from harness import ray_executor

            backend_name = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
            store = lambda spec, row, history: _store(root, spec, row, history, progress, force)  # noqa: E731
            finished += ray_executor.run(
                todo, pending, options, start, store, address, max_calls=RUNS_PER_WORKER.get(backend_name)
            )
        else:
            local = dataclasses.replace(options, jobs=jobs)
            finished += (
                _in_process(todo, pending, local, start)
                if jobs == 1 and here
                else _in_workers(todo, pending, local, start)
            )
    start()
    if progress:
        progress.finish()
    return [row for row in finished if row["status"] == "failed"]


def _once(function):
    done = []

    def call():
        if not done:
            done.append(True)
            function()

    return call


def _keras_backend():
    """The backend Keras already runs on in this process, or None before it is imported."""
    return sys.modules["keras"].backend.backend() if "keras" in sys.modules else None


def _run_group(runs):
    """A group in this process (Keras on JAX): its rows, or ("fallback", reason) for the per-run path."""
    from harness import engine

    try:
        return engine.run_group(runs)
    except engine.Unsupported as exc:
        return ("fallback", str(exc))


def _import_engine():
    """Keras on JAX in this process for the engine (before anything else imports Keras)."""
    if _keras_backend() is None:
        saved = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = "jax"
        try:
            from harness import engine

            engine.enable_compile_cache()  # before the spec check: its eager ops compile too
        finally:  # per-run workers started later keep the backend the user chose
            if saved is None:
                os.environ.pop("KERAS_BACKEND")
            else:
                os.environ["KERAS_BACKEND"] = saved
    return _keras_backend() == "jax"


def _run_groups(chunks, root, jobs, progress, start, fail_fast, executor, address, force=False):
    """Train each chunk as one program: in this process when there is one chunk or one job,
    else in worker processes (or Ray tasks), a chunk per task. Returns (stored rows, runs
    that go to the per-run path)."""
    if not chunks:
        return [], []
    specs = list({spec.name: spec for chunk in chunks for spec, *_ in chunk}.values())
    size = sum(len(c) for c in chunks)
    finished, fallback = [], []

    def collect(chunk, outcome):
        if isinstance(outcome, tuple) and outcome and outcome[0] == "fallback":
            print(groups.fallback_note(chunk, outcome[1]), file=sys.stderr)
            fallback.extend(chunk)
            return
        for spec in {spec.name: spec for spec, *_ in chunk}.values():
            results.write_spec(root, spec)
        # one write per file: a group's runs end together; a run stored meanwhile by another
        # invocation is kept, unless --force
        for row in results.save_runs(root, outcome, keep_finished=not force):
            finished.append(row)
            if progress:
                progress.done(row)

    if executor == "ray":
        from harness import ray_executor

        for chunk, outcome in ray_executor.run_groups(chunks, specs, jobs, start, address=address):
            collect(chunk, outcome)
        return finished, fallback
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(chunks)))
    if jobs == 1 and _import_engine():
        from harness import runner

        runner.check_specs(specs)
        start()
        for chunk in chunks:
            if progress:
                progress.group(chunk, size)
            collect(chunk, _run_group(chunk))
        return finished, fallback
    pool = _Pool(jobs, "jax", None)
    try:
        pool.submit("check", "check", specs)
        for _, problem in pool.results(1):
            if problem:
                raise HarnessError(str(problem))
        start()
        for key, chunk in enumerate(chunks):
            pool.submit(key, "group", chunk)
        if progress:
            progress.running(jobs)
        for key, outcome in pool.results(len(chunks)):
            chunk = chunks[key]
            if isinstance(outcome, Exception):  # the worker died: its chunk is failed
                for spec, seed, *_ in chunk:
                    finished.append(_store(root, spec, results.failed_row(spec, seed, outcome), [], progress))
            else:
                collect(chunk, outcome)
    except BaseException:
        pool.close(kill=True)
        raise
    pool.close()
    return finished, fallback


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
