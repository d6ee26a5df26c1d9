"""Ray tasks as a place to train groups, on an existing cluster (`--address`, $RAY_ADDRESS) or a local
Ray started here.

Only `run --executor ray` imports this module (and Ray). Each group is one task with one CPU; the
driver gets back its events and stores the runs exactly as local runs are stored.
"""

import logging
import os

from harness.errors import HarnessError
from harness.training import places


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


class RayTasks:
    """Ray tasks, one group per task with one CPU, on the cluster at `address` ($RAY_ADDRESS) or on a
    local Ray with `jobs` CPUs started here."""

    def __init__(self, jobs, backend, address=None):
        _token_driver(address)
        try:
            import ray
        except ImportError:
            raise HarnessError("--executor ray needs Ray: pip install -e '.[ray]'") from None
        self.ray, self.started_here = ray, _connect(ray, address, jobs)
        task = {"num_cpus": 1, "max_retries": 0, "runtime_env": {"env_vars": {"KERAS_BACKEND": backend}}}
        if places.RUNS_PER_WORKER.get(backend):  # a worker process is replaced after this many tasks
            task["max_calls"] = places.RUNS_PER_WORKER[backend]
        self.work, self.check_task = ray.remote(**task)(places.work), ray.remote(**task)(places.check)
        self.backend, self.pending = backend, {}
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))

    @property
    def full(self):
        return len(self.pending) >= self.slots

    def check(self, specs):
        return self.ray.get(self.check_task.remote(specs))

    def submit(self, group):
        self.pending[self.work.remote(group)] = group

    def results(self):
        while self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1)
            group = self.pending.pop(ready[0])
            try:
                ended = self.ray.get(ready[0])
            except Exception as exc:  # the task's worker died, or Ray failed it
                ended = [], "failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
            yield (group, *ended)

    def close(self, kill=False):
        for ref in self.pending:  # Ctrl-C, --fail-fast or an error: outstanding groups are dropped
            try:
                self.ray.cancel(ref, force=True)
            except Exception:
                pass
        self.pending = {}
        if self.started_here:
            self.ray.shutdown()
