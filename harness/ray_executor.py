"""Runs as Ray tasks, on an existing cluster (`--address`, $RAY_ADDRESS) or a local Ray started here.

Only `run --executor ray` imports this module (and Ray). Each run is one task with one CPU;
the driver gets back (row, history) and stores it exactly as local runs are stored.
"""

import logging
import os

from harness.errors import HarnessError


def _task(backend, kind, payload):
    """In a Ray worker: import Keras quietly on the chosen backend, then check specs or train one seed."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    from harness import runner  # brings up Keras quietly, one thread

    return runner.work(kind, payload)


def _token_driver(address):
    """`ray start --head` turns token authentication on, a driver connecting by address does not:
    be a token driver unless told otherwise. Ray reads this when it is imported."""
    if address or os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def _reachable(address):
    """Whether something listens at a plain HOST:PORT address (Ray itself waits minutes to say no)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return True  # "auto", "ray://...": Ray's to judge
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        return True
    except OSError:
        return False


def _cannot_connect(address, why):
    mode = os.environ.get("RAY_AUTH_MODE", "")
    return HarnessError(
        f"cannot connect to the Ray cluster at {address}: {why}. Check: the address (the head's IP and "
        f"the --port of its `ray start --head`; `ray status --address {address}` on the head); the "
        f"authentication mode (RAY_AUTH_MODE is {mode or 'unset'} here and must match the head's: "
        "`ray start --head` turns token authentication on); the token (this machine needs the head's, "
        "in ~/.ray/auth_token or $RAY_AUTH_TOKEN)"
    )


def _connect(ray, address, jobs):
    """ray.init quietly; returns True when this process started (and must shut down) Ray."""
    if ray.is_initialized():
        return False
    quiet = {
        "log_to_driver": False,
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "configure_logging": True,
    }
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        if not _reachable(address):
            raise _cannot_connect(address, "nothing answers at that address")
        try:
            ray.init(address=address, **quiet)
        except Exception as exc:  # Ray's ConnectionError, or a refused token
            raise _cannot_connect(
                address, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            ) from None
    else:
        # "local": a new Ray here, never the cluster a stale /tmp/ray/ray_current_cluster names
        ray.init(address="local", num_cpus=jobs or os.cpu_count() or 1, **quiet)
    return True


def run(todo, specs, options, start, store, address=None, max_calls=None):
    """Run `todo` [(spec, seed, fold)] as Ray tasks with `options` (an executor.RunOptions);
    `store(spec, row, history)` writes each as it ends."""
    _token_driver(address)
    try:
        import ray
    except ImportError:
        raise HarnessError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    from harness import results

    backend, progress = options.backend or os.environ.get("KERAS_BACKEND"), options.progress
    started_here = _connect(ray, address, options.jobs)
    task = {"num_cpus": 1, "max_retries": 0}
    if max_calls:  # a worker process is replaced after this many runs (TensorFlow's per-model leak)
        task["max_calls"] = max_calls
    if backend:
        task["runtime_env"] = {"env_vars": {"KERAS_BACKEND": backend}}
    remote = ray.remote(**task)(_task)
    finished, pending = [], {}
    try:
        problem = ray.get(remote.remote(backend, "check", specs))
        if problem:
            raise HarnessError(problem)
        start()
        for spec, seed, fold in todo:
            pending[remote.remote(backend, "run", (spec, seed, fold, options.fast))] = (spec, seed, fold)
        if progress:
            progress.running(min(len(todo), int(ray.cluster_resources().get("CPU", 1))))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec, seed, fold = pending.pop(ready[0])
            try:
                row, history = ray.get(ready[0])
            except Exception as exc:  # the task's worker died, or Ray failed it
                row, history = results.failed_row(spec, seed, f"{type(exc).__name__}: {exc}", fold), []
            finished.append(store(spec, row, history))
            if options.fail_fast and row["status"] == "failed":
                break  # the rest are cancelled below and run next time
    finally:
        for ref in pending:  # Ctrl-C, --fail-fast or an error: outstanding runs are dropped
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        if started_here:
            ray.shutdown()
    return finished


def _group_task(kind, payload):
    """In a Ray worker, Keras on JAX: check specs, or train a chunk of runs as one program."""
    os.environ["KERAS_BACKEND"] = "jax"
    from harness import engine, runner

    if kind == "check":
        try:
            runner.check_specs(payload)
            return None
        except HarnessError as exc:
            return str(exc)
    try:
        return engine.run_group(payload)
    except engine.Unsupported as exc:
        return ("fallback", str(exc))


def run_groups(chunks, specs, jobs, start, address=None):
    """Yield (chunk, outcome) as each chunk's Ray task ends: its [(row, history)], or
    ("fallback", reason) when the engine cannot take it. A group is one task."""
    _token_driver(address)
    try:
        import ray
    except ImportError:
        raise HarnessError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    from harness import results

    started_here = _connect(ray, address, jobs)
    remote = ray.remote(num_cpus=1, max_retries=0, runtime_env={"env_vars": {"KERAS_BACKEND": "jax"}})(
        _group_task
    )
    pending = {}
    try:
        problem = ray.get(remote.remote("check", specs))
        if problem:
            raise HarnessError(problem)
        start()
        pending = {remote.remote("group", chunk): chunk for chunk in chunks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            chunk = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except Exception as exc:  # the task's worker died, or Ray failed it
                error = f"{type(exc).__name__}: {exc}"
                outcome = [(results.failed_row(spec, seed, error), []) for spec, seed, *_ in chunk]
            yield chunk, outcome
    finally:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        if started_here:
            ray.shutdown()
