"""The command line: list, show, run, compare, report, export, doctor, bench. Only `run`, `doctor`,
`bench` (and `show --keras`) import Keras, through harness.training.

Tables go to stdout; progress, notes and "wrote:" lines to stderr (`-q` silences them)."""

import argparse
import json
import os
import signal
import sys

from harness import __version__, registry, search
from harness.errors import HarnessError
from harness.formatting import text_table
from harness.spec import set_name

USER_ERROR = 2
INTERRUPTED = 130  # Ctrl-C; SIGTERM and SIGHUP exit 128 + their number (143, 129), as the shell reports them


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop as Ctrl-C does (every `except BaseException` cleanup runs)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


def _stopped(code):
    """Exit status `code`, at once if a thread still trains (a group dropped mid-training)."""
    processes = sys.modules.get("harness.training.processes")
    if processes:
        processes.exit_if_training(code)
    return code


def parse_set(item):
    """'PATH=VALUE' -> (path, value); VALUE is JSON if it parses, else a string."""
    if "=" not in item:
        raise HarnessError(f"--set {item!r}: expected PATH=VALUE, for example --set fit.epochs=20")
    path, raw = item.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return path.strip(), value


def cmd_list(args):
    specs = registry.discover(args.experiments)
    rows = [
        (s.name, s.data["dataset"], ",".join(s.tags), s.description) for s in search.collapse(specs.values())
    ]
    print(text_table(["name", "dataset", "tags", "description"], rows))
    return 0


def cmd_show(args):
    specs = registry.discover(args.experiments)
    spec = registry.select(specs, [args.name])[0]
    trials = [
        s
        for s in specs.values()
        if search.of(s) and search.of(s).name == args.name and args.name not in specs
    ]
    spec = search.of(spec).base if trials else spec  # a search: its base, then its trials
    print(spec.to_json())
    print(f"\nspec hash: {spec.hash}")
    if spec.base:
        print(f"variant of {spec.base}, overriding: {', '.join(spec.overrides) or 'nothing'}")
    rows = [
        (i, layer["class_name"], ", ".join(f"{k}={v}" for k, v in layer.items() if k != "class_name"))
        for i, layer in enumerate(spec.model)
    ]
    print("\n" + text_table(["#", "layer", "config"], rows))
    if trials:
        print(
            f"\n{search.of(trials[0]).summary()}:\n"
            + text_table(["trial", "spec hash"], [(t.name, t.hash) for t in trials])
        )
    if args.keras:
        from harness import data
        from harness.training import models  # imports Keras quietly

        split = data.load_split(spec.data, spec.seeds[0], data.folds(spec.data)[0])
        models.check(spec, split.n_features)
        print()
        models.build(spec, split.n_features).summary()
    else:
        print("\n(`show --keras` builds the model with Keras and prints its summary and parameter count)")
    return 0


def selected_specs(args):
    specs = registry.select(registry.discover(args.experiments), args.names, args.suite)
    if args.set:
        overrides = dict(parse_set(item) for item in args.set)
        specs = [s.with_overrides(overrides, name=set_name(s.name, overrides)) for s in specs]
    if args.seeds is not None:
        if args.seeds <= 0:
            raise HarnessError(f"--seeds {args.seeds}: must be a positive number of seeds")
        specs = [s.with_seeds(range(args.seeds)) for s in specs]
    return specs


def cmd_run(args):
    from harness import results
    from harness.progress import Progress
    from harness.training import groups, processes, scheduler

    engine = groups.choose(args.engine, args.backend, args.verbose)
    if args.executor == "local" and engine == "per-run" and not args.verbose and args.jobs != 1:
        processes.warm_up(args.backend or groups.default_backend())
    specs = selected_specs(args)
    options = scheduler.RunOptions(
        args.results,
        jobs=args.jobs,
        backend=args.backend,
        engine=args.engine,
        fail_fast=args.fail_fast,
        verbose=args.verbose,
        progress=None if args.verbose or args.quiet else Progress(),
        force=args.force,
        executor=args.executor,
        address=args.address,
    )
    failures = scheduler.run(specs, options)
    import pandas as pd

    runs = pd.concat(
        [
            results.stored_runs(args.results, s.name, s.hash).query("seed in @s.seeds", local_dict={"s": s})
            for s in specs
        ]
    )
    table = results.summary(runs)
    print(f"\n{results.summary_title(runs)}")
    print(table.to_string(index=False))
    whole = search.complete(specs)  # a search whose trials all ran: its folders as one glob
    folders = dict.fromkeys(
        f"{results.experiment_dir(args.results, search.of(s).name)}[*]"
        if search.of(s) and search.of(s).name in whole
        else str(results.experiment_dir(args.results, s.name))
        for s in specs
    )
    print(f"\nresults: {', '.join(folders)}")
    if failures:
        print(f"{len(failures)} run(s) failed; see the error column of runs.csv", file=sys.stderr)
        if args.fail_fast:
            print(
                "stopped at the first failed run (--fail-fast); the runs not done yet run next time",
                file=sys.stderr,
            )
        return 1
    return 0


def cmd_bench(args):
    from harness import bench

    if args.larger is None:
        args.larger = "overfit_baseline" if "overfit_baseline" in registry.discover(args.experiments) else ""
    return bench.main(args)


def _suite_label(args):
    return None if args.names or not args.suite else "+".join(args.suite)


def _same_selection(args, command):
    """The words after `python -m harness` that select the same experiments for `command`."""
    import shlex

    words = [command, *args.names, *[w for tag in args.suite or [] for w in ("--suite", tag)]]
    if getattr(args, "baseline", None):
        words += ["--baseline", args.baseline]
    if args.results != "results":
        words += ["--results", args.results]
    return " ".join(shlex.quote(w) for w in words)


def cmd_compare(args):
    from harness import comparison, report  # stored runs only: pandas, scipy (matplotlib to draw); no Keras

    names, hashes = comparison.select(
        registry.discover(args.experiments), args.results, args.names, args.suite
    )
    compared = comparison.main(
        names,
        args.results,
        baseline=args.baseline,
        suite=_suite_label(args),
        plots=not args.no_plots,
        current_hashes=hashes,
        min_effect=args.min_effect,
    )
    if not args.quiet:
        note(
            f"report: `python -m harness {_same_selection(args, 'report')}` writes "
            f"{report.path_for(args.results, compared.label)}"
        )
    return 0


def note(text):
    """A line for the person at the terminal, not for a pipe: stderr."""
    print(text, file=sys.stderr)


def cmd_report(args):
    from harness import comparison, report  # stored runs only; no Keras

    names, _ = comparison.select(registry.discover(args.experiments), args.results, args.names, args.suite)
    compared = comparison.compute(names, args.results, baseline=args.baseline, suite=_suite_label(args))
    csv_path = comparison.write(compared.table, args.results, compared.label)
    path = report.write(
        compared, args.results, command=f"python -m harness {_same_selection(args, 'report')}"
    )
    if not args.quiet:
        note(f"wrote:\n  {path}\n  {csv_path}")
    return 0


def cmd_export(args):
    from harness import comparison, export_mlflow  # stored runs only; no Keras

    export_mlflow.require()
    names, _ = comparison.select(registry.discover(args.experiments), args.results, args.names, args.suite)
    say = (lambda text: None) if args.quiet else note
    export_mlflow.export(
        names,
        args.results,
        tracking_uri=args.tracking_uri,
        experiment=args.mlflow_experiment,
        baseline=args.baseline,
        suite=_suite_label(args),
        say=say,
    )
    return 0


def cmd_doctor(args):
    from harness import doctor
    from harness.progress import Progress
    from harness.training import scheduler

    seeds, args.seeds = args.seeds, None  # the doctor draws its own seeds: verification, then selection
    specs = selected_specs(args)
    if len(specs) != 1:
        raise HarnessError(
            f"doctor takes one experiment; {args.names[0]!r} matches {len(specs)}: "
            f"{', '.join(s.name for s in specs[:5])}"
        )

    def run(batch, expected=()):
        options = scheduler.RunOptions(
            args.results,
            jobs=args.jobs,
            backend=args.backend,
            engine=args.engine,
            progress=None if args.quiet else Progress(),
            force=args.force,
        )
        failures = scheduler.run(batch, options, expected)
        if failures:
            print(f"{len(failures)} run(s) failed; see the error column of runs.csv", file=sys.stderr)

    doctor.main(
        specs[0],
        args.results,
        run=run,
        seeds=seeds,
        selection_seeds=args.selection_seeds,
        note=(lambda text: None) if args.quiet else note,
    )
    return 0


def parser():
    p = argparse.ArgumentParser(
        prog="python -m harness", description="Declarative Keras experiments, run over seeds."
    )
    p.add_argument(
        "--experiments",
        action="append",
        default=[],
        metavar="DIR",
        help=f"another directory of experiment modules (also ${registry.ENV_VAR})",
    )
    p.add_argument("--version", action="version", version=f"harness {__version__}")
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress, notes or 'wrote:' lines (stderr); tables still print",
    )
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list experiments: name, dataset, tags, description")

    show = sub.add_parser("show", help="the resolved spec of an experiment and its layers")
    show.add_argument("name")
    show.add_argument(
        "--keras",
        action="store_true",
        help="also build the model with Keras and print its summary (imports TensorFlow)",
    )

    run = sub.add_parser("run", help="run experiments over their seeds and print mean ± std")
    run.add_argument("names", nargs="*", help="experiment names or glob patterns")
    run.add_argument(
        "--suite", action="append", metavar="TAG", help="also run every experiment with this tag (repeatable)"
    )
    run.add_argument("--seeds", type=int, help="run seeds 0..N-1 instead of the spec's seeds")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a spec field, e.g. --set fit.epochs=20",
    )
    run.add_argument("--force", action="store_true", help="re-run seeds already stored for the same spec")
    run.add_argument(
        "--results", default="results", metavar="DIR", help="where results go (default: ./results)"
    )
    run.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: the number of cores; 1 runs in this process)",
    )
    run.add_argument(
        "--backend",
        choices=["tensorflow", "jax", "torch"],
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)",
    )
    run.add_argument(
        "--engine",
        choices=["auto", "vectorized", "per-run"],
        default="auto",
        help="vectorized: runs that compile to the same program train together as one JAX program; "
        "per-run: one model.fit per run; auto (default): vectorized when JAX is installed and no other "
        "--backend is asked for, per-run for the specs it cannot take",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="show Keras' own epoch output")
    run.add_argument(
        "--fail-fast", action="store_true", help="stop at the first run that fails (exit status 1)"
    )
    run.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: this process or worker processes; ray: Ray tasks on a cluster (needs the ray extra)",
    )
    run.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="with --executor ray: the Ray cluster's head "
        "(default: $RAY_ADDRESS, else a local Ray with --jobs CPUs)",
    )
    bench = sub.add_parser(
        "bench", help="measure speed and memory against plain Keras (minutes); writes results/bench.csv"
    )
    bench.add_argument(
        "--reps", type=int, default=7, help="fits per side for the fit-time comparison (default 7)"
    )
    bench.add_argument(
        "--larger",
        default=None,
        metavar="NAME",
        help="the larger experiment to time besides iris_baseline (default: overfit_baseline)",
    )
    bench.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sweeps")
    bench.add_argument(
        "--engine-only", action="store_true", help="only the vectorized engine's rows (issues 12 and 20)"
    )
    bench.add_argument(
        "--before",
        default=None,
        metavar="REF",
        help="the git commit whose engine the issue-20 rows are measured against, in the same run "
        "(default: b167e2b, main before issue 20)",
    )
    bench.add_argument("--results", default="results", metavar="DIR")
    doctor = sub.add_parser(
        "doctor",
        help="diagnose an experiment, choose each remedy's strength on validation data, "
        "verify it on other seeds",
    )
    doctor.add_argument("names", nargs=1, metavar="name", help="the experiment to diagnose")
    doctor.add_argument(
        "--seeds",
        type=int,
        default=10,
        metavar="N",
        help="verification seeds 0..N-1: each remedy against the baseline (default 10)",
    )
    doctor.add_argument(
        "--selection-seeds",
        type=int,
        default=5,
        metavar="M",
        help="seeds N..N+M-1, on which each remedy's strength is chosen by validation loss (default 5)",
    )
    doctor.add_argument(
        "--results", default="results", metavar="DIR", help="where results go (default: ./results)"
    )
    doctor.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: the number of cores)",
    )
    doctor.add_argument(
        "--backend",
        choices=["tensorflow", "jax", "torch"],
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)",
    )
    doctor.add_argument("--force", action="store_true", help="re-run seeds already stored")
    doctor.add_argument(
        "--engine",
        choices=["auto", "vectorized", "per-run"],
        default="auto",
        help="vectorized: runs that compile to the same program train together as one JAX program; "
        "per-run: one model.fit per run; auto (default): vectorized when JAX is installed and no other "
        "--backend is asked for, per-run for the specs it cannot take",
    )
    doctor.set_defaults(suite=None, set=[])
    compare = sub.add_parser(
        "compare",
        help="compare stored runs: 95%% CIs over seeds, gaps, diagnosis, paired differences vs a baseline",
    )
    compare.add_argument("names", nargs="*", help="experiment names or glob patterns")
    compare.add_argument(
        "--suite",
        action="append",
        metavar="TAG",
        help="also compare every experiment with this tag (repeatable)",
    )
    compare.add_argument(
        "--baseline",
        metavar="NAME",
        help="compare against NAME (default: the experiment the others are variants of, else the first)",
    )
    compare.add_argument(
        "--results", default="results", metavar="DIR", help="where the runs are stored (default: ./results)"
    )
    compare.add_argument("--no-plots", action="store_true", help="skip curves.png and the comparison figure")
    compare.add_argument(
        "--min-effect",
        type=float,
        metavar="X",
        help="the difference 'runs needed' is for (default: each observed difference), e.g. 0.02 accuracy",
    )

    def selection(sp, what):
        sp.add_argument("names", nargs="*", help="experiment names or glob patterns")
        sp.add_argument(
            "--suite",
            action="append",
            metavar="TAG",
            help=f"also {what} every experiment with this tag (repeatable)",
        )
        sp.add_argument(
            "--baseline",
            metavar="NAME",
            help="compare against NAME (default: the experiment the others are variants of, else the first)",
        )
        sp.add_argument(
            "--results",
            default="results",
            metavar="DIR",
            help="where the runs are stored (default: ./results)",
        )

    report = sub.add_parser(
        "report",
        help="write a comparison as one self-contained HTML page to results/reports/ "
        "(tables, intervals, curves, versions)",
    )
    selection(report, "report")
    export = sub.add_parser("export", help="send stored runs to a tracking server")
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")
    mlflow = targets.add_parser(
        "mlflow",
        help="one MLflow parent run per experiment, one child run per seed (needs the mlflow extra)",
    )
    selection(mlflow, "export")
    mlflow.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI (default: sqlite:///RESULTS/mlflow.db, a file beside the runs)",
    )
    mlflow.add_argument(
        "--mlflow-experiment",
        default="harness",
        metavar="NAME",
        help="the MLflow experiment the runs go in (default: harness)",
    )

    for sp in [*sub.choices.values(), mlflow]:
        sp.add_argument(
            "--experiments", action="append", default=argparse.SUPPRESS, metavar="DIR", help=argparse.SUPPRESS
        )
        sp.add_argument(
            "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    commands = {
        "list": cmd_list,
        "show": cmd_show,
        "run": cmd_run,
        "bench": cmd_bench,
        "compare": cmd_compare,
        "doctor": cmd_doctor,
        "report": cmd_report,
        "export": cmd_export,
    }
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    stops = (signal.SIGTERM, signal.SIGHUP) if main_thread else ()
    previous = {signum: signal.signal(signum, _stop) for signum in stops}
    try:
        if getattr(args, "jobs", None) is not None and args.jobs < 1:
            raise HarnessError(f"--jobs {args.jobs}: must be at least 1 (1 runs in this process)")
        status = commands[args.command](args)
        sys.stdout.flush()  # a reader gone early (`| head`) shows here, not in Python's teardown
        return status
    except BrokenPipeError:  # the rest of the output is not wanted: end quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR
    except Stopped as exc:
        print(f"\nstopped by {exc}; every finished run is stored", file=sys.stderr)
        return _stopped(128 + exc.signum)
    except KeyboardInterrupt:
        print("\ninterrupted; every finished run is stored", file=sys.stderr)
        return _stopped(INTERRUPTED)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
