"""Schedules runs: in this process (`--jobs 1`) or in long-lived worker processes.

Workers import Keras once and take many runs; the main process never imports Keras when
it has workers, writes every finished run at once (it is the only writer) and counts
progress. Ctrl-C stops the workers and keeps every run already written.
"""

import concurrent.futures as cf
import multiprocessing
import os
import signal

from harness import results
from harness.errors import HarnessError

# A worker is replaced after this many runs: TensorFlow keeps ~4 MB per fitted model that
# neither clear_session nor gc frees (tensorflow#61791), so 10 runs stay within ~40 MB.
# JAX frees them.
RUNS_PER_WORKER = {"tensorflow": 10, "jax": None, "torch": 10}


def plan(specs, root, force=False):
    """[(spec, seed)] still to run, and how many stored runs were skipped."""
    todo, skipped = [], 0
    for spec in specs:
        done = set() if force else results.finished_seeds(root, spec.name, spec.hash)
        for seed in spec.seeds:
            if seed in done:
                skipped += 1
            else:
                todo.append((spec, seed))
    return todo, skipped


def _worker_init(backend):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    import harness.runner  # noqa: F401  (import Keras once, before the first run)


def _check(specs):
    """Worker side of the Keras check; an error comes back as text (SpecError does not pickle)."""
    from harness import runner

    try:
        runner.check_specs(specs)
    except HarnessError as exc:
        return str(exc)
    return None


def _run(spec, seed, verbose=False, fast=True):
    from harness import runner

    try:
        return runner.run_seed(spec, seed, verbose=verbose, fast=fast)
    except Exception as exc:  # a run that raises is recorded as failed; the sweep goes on
        return runner.failed_row(spec, seed, exc), []


def run(specs, root, jobs=None, backend=None, force=False, verbose=False, progress=None, fast=True):
    """Run every (spec, seed) not yet stored under `root`; returns the rows of failed runs."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    todo, skipped = plan(specs, root, force)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    if verbose:
        jobs = 1  # Keras' epoch lines from several processes would interleave
    if progress:
        progress.start(len(todo), skipped)
    if todo:
        pending = list({spec.name: spec for spec, _ in todo}.values())
        finished = _in_process(todo, pending, root, verbose, progress, fast) if jobs == 1 else _in_workers(todo, pending, root, jobs, backend, progress, fast)
    else:
        finished = []
    if progress:
        progress.finish()
    return [row for row in finished if row["status"] == "failed"]


def _store(root, spec, row, history, progress):
    results.write_spec(root, spec)
    results.save_run(root, row, history)
    if progress:
        progress.done(row)
    return row


def _in_process(todo, specs, root, verbose, progress, fast):
    from harness import runner

    runner.check_specs(specs)
    finished = []
    for spec, seed in todo:
        if progress:
            progress.begin(spec, seed)
        on_epoch = progress.epoch if progress else None
        try:
            row, history = runner.run_seed(spec, seed, verbose=verbose, on_epoch=on_epoch, fast=fast)
        except Exception as exc:
            row, history = runner.failed_row(spec, seed, exc), []
        finished.append(_store(root, spec, row, history, progress))
    return finished


def _in_workers(todo, specs, root, jobs, backend, progress, fast):
    backend_name = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    pool = cf.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
        initargs=(backend,), max_tasks_per_child=RUNS_PER_WORKER.get(backend_name),
    )
    finished = []
    try:
        problem = pool.submit(_check, specs).result()
        if problem:
            raise HarnessError(problem)
        futures = {pool.submit(_run, spec, seed, False, fast): (spec, seed) for spec, seed in todo}
        if progress:
            progress.running(min(jobs, len(todo)))
        for future in cf.as_completed(futures):
            spec, seed = futures[future]
            try:
                row, history = future.result()
            except cf.process.BrokenProcessPool as exc:
                row, history = results.failed_row(spec, seed, f"worker process died: {exc}"), []
            finished.append(_store(root, spec, row, history, progress))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list((pool._processes or {}).values()):
            process.terminate()
        raise
    pool.shutdown()
    return finished
