"""One loop for every run: plan the runs not stored yet, form groups, train them at a place as it has
room, store each group's runs one way (`results.store`). With `fail_fast` the first failed run stops
everything; Ctrl-C stops at once: stored runs are kept, groups in flight train again next time.
"""

import dataclasses
import io
import os
import sys

from harness import results
from harness.data import folds
from harness.errors import HarnessError
from harness.progress import Progress
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


def pending(specs, root, force=False):
    """[(spec, seed, fold)] still to run, and how many stored runs were skipped (fold is None unless
    the spec has `data.cv`; then every seed runs on folds 0..K*R-1)."""
    for spec in specs:
        results.check_readable(root, spec.name)  # a damaged file stops us before anything trains
    runs = [(spec, seed, fold) for spec in specs for seed in spec.seeds for fold in folds(spec.data)]
    todo, stored = _unstored(runs, root, force)
    return todo, len(stored)


def _unstored(runs, root, force):
    """`runs` [(spec, seed, fold)] not stored under `root` (all of them with `force`), and the stored
    rows of the others."""
    if force:
        return list(runs), []
    specs = {spec.name: spec for spec, _, _ in runs}.values()  # read each experiment's runs once
    done = {spec.name: results.finished_runs(root, spec.name, spec.hash) for spec in specs}
    mine = [done[spec.name].get((seed, fold)) for spec, seed, fold in runs]
    return [run for run, row in zip(runs, mine) if row is None], [row for row in mine if row is not None]


def run(specs, options, expected=()):
    """Train every run of `specs` not stored yet under `options.root`; returns the failed runs' rows.
    Specs `expected` to train later have their programs made ready with these (`groups.form`)."""
    if options.jobs is not None and (type(options.jobs) is not int or options.jobs < 1):
        raise HarnessError(f"jobs={options.jobs!r}: must be at least 1 (1 runs in this process)")
    todo, skipped = pending(specs, options.root, options.force)
    for spec in specs:
        results.check_writable(options.root, spec.name)
        results.remove_temp_files(options.root, spec.name)  # a killed process's, never a live one's
    queue, notes = groups.form(
        todo, options.engine, options.backend, options.verbose, options.fast, expected=expected
    )
    progress, stored, checked = options.progress or Progress(io.StringIO()), [], not queue
    while queue:
        batch = [g for g in queue if g.backend == queue[0].backend]
        queue = [g for g in queue if g.backend != batch[0].backend]
        place, stop = _place(options, batch), True  # an error before _train returns kills the place
        try:
            if not checked:  # before anything trains: a bad spec prints its error and nothing else
                checked, problem = True, place.check(specs)
                if problem:
                    raise problem
                print(*notes, sep="\n", file=sys.stderr) if notes else None
                progress.start(len(todo), skipped)
            stop = _train(place, batch, queue, options, progress, stored)
        finally:
            place.close(kill=stop)
        if stop:
            break
    if not todo:
        progress.start(0, skipped)
    progress.finish()
    return [row for row in stored if row["status"] == "failed"]


def _place(options, batch):
    backend = batch[0].backend
    if options.executor == "ray":
        from harness.training import cluster

        return cluster.RayTasks(options.jobs, backend, options.address)
    # vectorized groups train one after another in one process, each over all its cores
    one = options.verbose or all(g.trainer == "vectorized" for g in batch)
    jobs = 1 if one else min(options.jobs or os.cpu_count() or 1, len(batch))
    if jobs == 1 and places.keras_here(backend):
        return places.Pool(1, backend, here=True, on_epoch=options.progress and options.progress.epoch)
    return places.Pool(jobs, backend)


def _train(place, batch, later, options, progress, stored):
    """Train `batch` at `place`, storing each group's runs as it ends; groups the vectorized trainer
    cannot take go to `later` as groups of one. True when fail-fast stopped it."""

    def keep(rows):
        stored.extend(rows)
        for row in rows:
            progress.done(row)

    def feed():  # without the runs another invocation stored since planning (they count as done)
        while batch and not place.full:
            group = batch.pop(0)
            left, theirs = _unstored(group.runs, options.root, options.force)
            keep(theirs)
            if left:
                group = dataclasses.replace(group, runs=tuple(left))
                progress.started(group)
                place.submit(group)

    feed()
    for group, made, end, why in place.results():
        if end == "unsupported":
            print(groups.fallback_note(group, why), file=sys.stderr)
            later.extend(groups.regroup(group, options.backend, options.fast))
        else:  # a failed group's runs after those it reported (in order) fail with its error
            made += [
                (results.failed_row(spec, seed, fold, why, backend=group.backend), [])
                for spec, seed, fold in group.runs[len(made) :]
                if end == "failed"
            ]
            specs = {spec.name: spec for spec, _, _ in group.runs}.values()
            keep(kept := results.store(options.root, made, specs, keep_finished=not options.force))
            if options.fail_fast and any(row["status"] == "failed" for row in kept):
                return True  # runs in flight are dropped, queued ones never start: both run next time
        feed()
    return False
