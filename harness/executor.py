"""Schedules runs: in this process (`--jobs 1`) or in long-lived worker processes.

Workers import Keras once and take many runs; the main process never imports Keras when
it has workers, writes every finished run at once (it is the only writer) and counts
progress. Ctrl-C stops the workers and keeps every run already written.

With the vectorized engine (`engine="auto"`/`"vectorized"`), runs that compile to the same
program (harness.groups) train together as one JAX program (harness.engine): in this process
when there is one group or one job, else a group per worker task or Ray task; the rest take
the per-run path.
"""

import multiprocessing
import os
import signal
import sys

from harness import groups, results
from harness.errors import HarnessError

# A worker is replaced after this many runs: TensorFlow keeps ~4 MB per fitted model that
# neither clear_session nor gc frees (tensorflow#61791), so 10 runs stay within ~40 MB.
# JAX frees them.
RUNS_PER_WORKER = {"tensorflow": 10, "jax": None, "torch": 10}


def plan(specs, root, force=False):
    """[(spec, seed, fold)] still to run, and how many stored runs were skipped.

    fold is None unless the spec has `data.cv`; then every seed runs on folds 0..K*R-1."""
    from harness.data import folds

    todo, skipped = [], 0
    for spec in specs:
        done = set() if force else results.finished_runs(root, spec.name, spec.hash)
        for seed in spec.seeds:
            for fold in folds(spec.data):
                if (seed, fold) in done:
                    skipped += 1
                else:
                    todo.append((spec, seed, fold))
    return todo, skipped


def _worker(backend, tasks, outcomes, max_runs):
    """A worker process: import Keras once, take tasks until told to stop or `max_runs` are done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
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
        if kind == "check":
            try:
                runner.check_specs(payload)
                outcomes.put(("result", key, None))
            except HarnessError as exc:  # sent as text: SpecError does not pickle
                outcomes.put(("result", key, str(exc)))
            continue
        if kind == "group":
            outcome = _run_group(payload)
            outcomes.put(("result", key, outcome))
            continue
        spec, seed, fold, fast = payload
        try:
            outcome = runner.run_seed(spec, seed, fold=fold, fast=fast)
        except Exception as exc:  # a run that raises is recorded as failed; the sweep goes on
            outcome = (runner.failed_row(spec, seed, exc, fold), [])
        outcomes.put(("result", key, outcome))
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
        self.backend, self.max_runs, self.workers = backend, max_runs, {}
        self.running = {}  # pid -> key of the task it took
        self.submitted = self.started = 0
        for _ in range(jobs):
            self._start()

    def _start(self):
        process = self.context.Process(
            target=_worker, args=(self.backend, self.tasks, self.outcomes, self.max_runs), daemon=True
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
    """Run every (spec, seed, fold) not yet stored under `root` (`fail_fast`: stop at the first failed run); returns the rows of failed runs.

    `executor="ray"` runs them as Ray tasks (harness.ray_executor) on the cluster at `address`
    ($RAY_ADDRESS) or on a local Ray with `jobs` CPUs; they are stored here the same way."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    todo, skipped = plan(specs, root, force)
    for spec in specs:  # this process is their folders' only writer
        results.remove_temp_files(root, spec.name)
    ray_jobs = jobs
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
        finished, fallback = _run_groups(chunks, root, jobs, progress, start, fail_fast, executor, address)
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
            store = lambda spec, row, history: _store(root, spec, row, history, progress)  # noqa: E731
            finished += ray_executor.run(
                todo,
                pending,
                root,
                ray_jobs,
                backend,
                progress,
                fast,
                start,
                fail_fast,
                store,
                address=address,
                max_calls=RUNS_PER_WORKER.get(backend_name),
            )
        else:
            finished += (
                _in_process(todo, pending, root, verbose, progress, fast, start, fail_fast)
                if jobs == 1 and here
                else _in_workers(todo, pending, root, jobs, backend, progress, fast, start, fail_fast)
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


def _run_groups(chunks, root, jobs, progress, start, fail_fast, executor, address):
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
        results.save_runs(root, outcome)  # one write per file: a group's runs end together
        for row, _ in outcome:
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


def _store(root, spec, row, history, progress):
    results.write_spec(root, spec)
    results.save_run(root, row, history)
    if progress:
        progress.done(row)
    return row


def _in_process(todo, specs, root, verbose, progress, fast, start, fail_fast=False):
    from harness import runner

    runner.check_specs(specs)
    start()
    finished = []
    for spec, seed, fold in todo:
        if progress:
            progress.begin(spec, seed, fold)
        on_epoch = progress.epoch if progress else None
        try:
            row, history = runner.run_seed(
                spec, seed, fold=fold, verbose=verbose, on_epoch=on_epoch, fast=fast
            )
        except Exception as exc:
            row, history = runner.failed_row(spec, seed, exc, fold), []
        finished.append(_store(root, spec, row, history, progress))
        if fail_fast and row["status"] == "failed":
            break
    return finished


def _in_workers(todo, specs, root, jobs, backend, progress, fast, start, fail_fast=False):
    backend_name = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    pool = _Pool(jobs, backend, RUNS_PER_WORKER.get(backend_name))
    finished = []
    try:
        pool.submit("check", "check", specs)
        for _, problem in pool.results(1):
            if problem:
                raise HarnessError(str(problem))
        start()
        for key, (spec, seed, fold) in enumerate(todo):
            pool.submit(key, "run", (spec, seed, fold, fast))
        if progress:
            progress.running(jobs)
        for key, outcome in pool.results(len(todo)):
            spec, seed, fold = todo[key]
            row, history = (
                (results.failed_row(spec, seed, outcome, fold), [])
                if isinstance(outcome, Exception)
                else outcome
            )
            finished.append(_store(root, spec, row, history, progress))
            if fail_fast and row["status"] == "failed":
                break  # runs in flight are dropped and queued ones never start: both run next time
    except BaseException:
        pool.close(kill=True)
        raise
    pool.close(kill=fail_fast and any(r["status"] == "failed" for r in finished))
    return finished
