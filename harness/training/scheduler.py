"""One loop for every run: plan the runs still to do, form groups, train them at a place, store
each result one way.

Groups go to a place (this process, worker processes or Ray tasks) as it has room; each result goes
through `results.store` (a run another invocation stored meanwhile is kept unless `force`); progress
hears of every group and run; with `fail_fast` the first failed run stops everything. Ctrl-C,
SIGTERM and SIGHUP stop the place at once: stored runs are kept, groups in flight are dropped and
train again next time.
"""

import dataclasses
import os
import sys

from harness import results
from harness.data import folds
from harness.errors import HarnessError
from harness.training import groups, places


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What every run of one command shares, wherever it trains."""

    root: str  # where results are stored
    jobs: int = None  # worker processes (Ray: CPUs of a local Ray); None: the number of cores
    backend: str = None  # Keras backend of the per-run trainer; None: $KERAS_BACKEND, else tensorflow
    engine: str = "auto"  # auto, vectorized or per-run (groups.choose)
    fast: bool = True  # the harness's input pipeline (False: plain numpy, as the article)
    fail_fast: bool = False  # stop at the first failed run
    verbose: bool = False  # Keras' own epoch lines (one process)
    progress: object = None  # a harness.progress.Progress, or None
    force: bool = False  # re-run and store runs already stored
    executor: str = "local"  # local (this process or worker processes) or ray
    address: str = None  # with ray: the cluster's head (None: $RAY_ADDRESS, else a local Ray)


class _Silent:
    def __getattr__(self, name):
        return lambda *args: None


def pending(specs, root, force=False):
    """[(spec, seed, fold)] still to run, and how many stored runs were skipped (fold is None unless
    the spec has `data.cv`; then every seed runs on folds 0..K*R-1)."""
    todo, skipped = [], 0
    for spec in specs:
        results.check_readable(root, spec.name)  # a damaged file stops us before anything trains
        done = {} if force else results.finished_runs(root, spec.name, spec.hash)
        runs = [(spec, seed, fold) for seed in spec.seeds for fold in folds(spec.data)]
        left = [run for run in runs if run[1:] not in done]
        todo, skipped = todo + left, skipped + len(runs) - len(left)
    return todo, skipped


def run(specs, options):
    """Train every run of `specs` not stored yet under `options.root`; returns the failed runs' rows."""
    if options.jobs is not None and (type(options.jobs) is not int or options.jobs < 1):
        raise HarnessError(f"jobs={options.jobs!r}: must be at least 1 (1 runs in this process)")
    todo, skipped = pending(specs, options.root, options.force)
    for spec in specs:
        results.check_writable(options.root, spec.name)
        results.remove_temp_files(options.root, spec.name)  # a killed process's, never a live one's
    queue, notes = groups.form(todo, options.engine, options.backend, options.verbose, options.fast)
    jobs = 1 if options.verbose else options.jobs or os.cpu_count() or 1
    progress, stored, checked = options.progress or _Silent(), [], False
    while queue:
        batch = [g for g in queue if g.backend == queue[0].backend]
        queue = [g for g in queue if g.backend != batch[0].backend]
        # vectorized groups train one after another in one process, each over all its cores
        vectorized = all(g.trainer == "vectorized" for g in batch)
        place = _place(options, batch[0].backend, 1 if vectorized else min(jobs, len(batch)))
        try:
            if not checked:  # before anything trains: a bad spec prints its error and nothing else
                checked, problem = True, place.check(specs)
                if problem:
                    raise problem
                print(*notes, sep="\n", file=sys.stderr) if notes else None
                progress.start(len(todo), skipped)
            stop = _train(place, batch, queue, options, progress, stored)
        except BaseException:
            place.close(kill=True)
            raise
        place.close(kill=stop)
        if stop:
            break
    if not checked:
        progress.start(0, skipped)
    progress.finish()
    return [row for row in stored if row["status"] == "failed"]


def _place(options, backend, jobs):
    if options.executor == "ray":
        from harness.training import cluster

        return cluster.RayTasks(options.jobs, backend, options.address)
    if jobs == 1 and places.keras_here(backend):
        return places.Pool(1, backend, here=True, on_epoch=options.progress and options.progress.epoch)
    return places.Pool(jobs, backend)


def _train(place, batch, later, options, progress, stored):
    """Feed `batch` to `place` as it has room and store each group's runs when it ends; a group the
    vectorized trainer cannot take comes back as groups of one (into `later` when they train on
    another backend). True when fail-fast stopped it."""
    busy, done = 0, {}
    while batch or busy:
        while batch and busy < place.slots:
            group = _unstored(batch.pop(0), options, progress, stored)
            if group:
                progress.started(group)
                place.submit(group)
                busy += 1
        for group, event, value in place.results():
            done.setdefault(id(group), []).append(value)
            if event != "run":
                break
        else:
            continue
        busy, finished = busy - 1, done.pop(id(group))[:-1]
        if event == "unsupported":
            print(groups.fallback_note(group, value), file=sys.stderr)
            for alone in groups.regroup(group, options.backend, options.fast):
                (batch if alone.backend == place.backend else later).append(alone)
            continue
        if event == "failed":  # the runs it did not report fail with its error
            reported = {(row["experiment"], row["seed"], row.get("fold")) for row, _ in finished}
            finished += [
                (results.failed_row(spec, seed, fold, value, backend=group.backend), [])
                for spec, seed, fold in group.runs
                if (spec.name, seed, fold) not in reported
            ]
        specs = {spec.name: spec for spec, _, _ in group.runs}.values()
        kept = results.store(options.root, finished, specs, keep_finished=not options.force)
        for row in kept:
            stored.append(row)
            progress.done(row)
        if options.fail_fast and any(row["status"] == "failed" for row in kept):
            return True  # runs in flight are dropped, queued ones never start: both run next time
    return False


def _unstored(group, options, progress, stored):
    """`group` without the runs another invocation stored since planning (they count as done)."""
    if options.force:
        return group
    specs = {spec.name: spec for spec, _, _ in group.runs}.values()  # read each experiment's runs once
    done = {spec.name: results.finished_runs(options.root, spec.name, spec.hash) for spec in specs}
    left = []
    for spec, seed, fold in group.runs:
        theirs = done[spec.name].get((seed, fold))
        if theirs is None:
            left.append((spec, seed, fold))
        else:
            stored.append(theirs)
            progress.done(theirs)
    return dataclasses.replace(group, runs=tuple(left)) if left else None
