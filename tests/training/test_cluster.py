"""harness.training.cluster: connecting to a Ray cluster (a head started as the README says, with token
authentication; an address where nothing answers). Ray tasks as a place to train, like every other
place, are tested in test_scheduler.py.
"""

import copy
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pandas as pd
import pytest
from conftest import PYTHON, ROOT, descendants

from harness import registry
from harness.training import scheduler

ray = pytest.importorskip("ray")  # only a guard: the test command installs the ray extra

SAME = [
    "experiment",
    "seed",
    "spec_hash",
    "status",
    "epochs_run",
    "best_epoch",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "params",
    "backend",
    "keras_version",
]


# -- a cluster started the way the README says ------------------------------------------------


def _descendants_and_self(pids):
    return [*pids, *(child for pid in pids for child in descendants(pid))]


def _stop_head(temp_dir, port):
    """End the processes of the head started with `temp_dir` and `port` (and theirs), by id: `ray stop`
    would end every Ray on this machine, other users' included."""
    mine = []
    for entry in os.listdir("/proc"):
        try:
            line = open(f"/proc/{entry}/cmdline").read() if entry.isdigit() else ""
            if temp_dir in line or ("ray" in line and f":{port}\0" in line):
                mine.append(int(entry))
        except OSError:
            continue
    pids = _descendants_and_self(mine)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_readme_cluster_recipe_with_token_authentication(
    tiny_spec, write_experiments, tmp_path, harness_env
):
    """`RAY_AUTH_MODE=token ray start --head ...` on the loopback address, then `run --executor ray
    --address HOST:PORT` with nothing else set: the rows equal a local run's. A driver whose auth
    mode differs from the head's exits 2 saying what to check."""
    d = write_experiments(
        [{**copy.deepcopy(tiny_spec), "name": "rayc", "seeds": [0, 1], "fit": {"epochs": 3}}]
    )
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"
    specs = registry.select(registry.discover([d]), ["rayc"])
    assert scheduler.run(specs, scheduler.RunOptions(str(local_root), jobs=1)) == []

    port, temp_dir = _free_port(), tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths are short
    ray_bin = os.path.join(os.path.dirname(PYTHON), "ray")
    env = {k: v for k, v in harness_env.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    head = [ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    head += [
        "--num-cpus",
        "2",
        "--temp-dir",
        temp_dir,
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
    ]
    head += ["--ray-client-server-port", str(_free_port())]  # not the default 10001 another head may hold
    try:
        started = subprocess.run(
            head, env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=180
        )
        assert started.returncode == 0, started.stderr
        address = f"127.0.0.1:{port}"
        command = [PYTHON, "-m", "harness", "--experiments", str(d), "run", "rayc", "--executor", "ray"]
        command += ["--address", address, "--results", str(ray_root)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        a = pd.read_csv(local_root / "rayc" / "runs.csv", dtype={"spec_hash": str}).sort_values("seed")
        b = pd.read_csv(ray_root / "rayc" / "runs.csv", dtype={"spec_hash": str}).sort_values("seed")
        pd.testing.assert_frame_equal(b[SAME].reset_index(drop=True), a[SAME].reset_index(drop=True))

        refused = subprocess.run(
            [*command[:-1], str(tmp_path / "other")],
            cwd=ROOT,
            env={**env, "RAY_AUTH_MODE": "disabled"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert refused.returncode == 2, refused.stderr
        assert f"error: cannot connect to the Ray cluster at {address}" in refused.stderr
        assert "RAY_AUTH_MODE is disabled here" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        _stop_head(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_an_address_where_nothing_listens_exits_2_saying_what_to_check(
    tiny_spec, write_experiments, tmp_path, harness_env
):
    d = write_experiments([tiny_spec])
    address = f"127.0.0.1:{_free_port()}"
    command = [PYTHON, "-m", "harness", "--experiments", str(d), "run", "tiny", "--executor", "ray"]
    command += ["--address", address, "--results", str(tmp_path / "res")]
    env = {k: v for k, v in harness_env.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert (
        f"error: cannot connect to the Ray cluster at {address}: nothing answers at that address"
        in done.stderr
    )
    for what in ("the address", "RAY_AUTH_MODE is token here", "~/.ray/auth_token"):
        assert what in done.stderr
    assert "Traceback" not in done.stderr
