"""Fixtures: a real local Quiver cluster (one coordinator, two workers) from the built binary.

The binary is $QUIVER_BIN, else <repo>/.build/debug/quiver, else <repo>/.build/release/quiver.
Every process listens on 127.0.0.1 with an ephemeral port (read from its "listening on" line),
keeps its data in a temporary folder and is stopped by pid when the session ends.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

import quiver

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def quiver_binary() -> Path | None:
    """The binary to test, or None when none is built."""
    candidates = [os.environ.get("QUIVER_BIN"), REPO / ".build/debug/quiver", REPO / ".build/release/quiver"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    if os.environ.get("QUIVER_BIN"):
        raise RuntimeError(f"QUIVER_BIN={os.environ['QUIVER_BIN']} is not an executable file")
    return None


@dataclass
class Process:
    """One started quiver process."""

    name: str
    popen: subprocess.Popen
    address: str
    log: Path


@dataclass
class Cluster:
    """A running cluster: its coordinator's address, processes and folders."""

    address: str
    processes: List[Process]
    root: Path
    import_root: Path
    binary: Path
    help_text: str

    def client(self, **kwargs) -> quiver.Client:
        return quiver.Client(self.address, **kwargs)


def _start(binary: Path, name: str, args: List[str], log: Path) -> Process:
    """Starts `quiver ARGS` and waits (bounded) for its "listening on HOST:PORT" line."""
    handle = open(log, "wb")
    popen = subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE, stderr=handle, stdin=subprocess.DEVNULL)
    handle.close()
    lines: "queue.Queue[str]" = queue.Queue()

    def read() -> None:
        for raw in popen.stdout:  # drained until exit so the process never blocks on a full pipe
            lines.put(raw.decode("utf-8", "replace"))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if popen.poll() is not None:
                raise RuntimeError(f"{name} exited with {popen.returncode} during start-up:\n{log.read_text(errors='replace')}")
            continue
        if "listening on" in line:
            return Process(name, popen, line.rsplit(" ", 1)[-1].strip(), log)
    _stop(popen)
    raise RuntimeError(f"{name} did not print its listening line within {START_TIMEOUT_S} s; log: {log}")


def _stop(popen: subprocess.Popen) -> None:
    """SIGTERM by pid, then SIGKILL if it has not exited within STOP_TIMEOUT_S."""
    if popen.poll() is not None:
        return
    os.kill(popen.pid, signal.SIGTERM)
    try:
        popen.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Cluster:
    binary = quiver_binary()
    if binary is None:
        pytest.skip(f"no quiver binary: set QUIVER_BIN or build {REPO}/.build/debug/quiver (swift build --product quiver)")
    root = tmp_path_factory.mktemp("cluster")
    import_root = root / "import"
    import_root.mkdir()
    help_text = subprocess.run([str(binary), "coordinator", "--help"], capture_output=True, text=True, timeout=60).stdout
    processes: List[Process] = []
    try:
        for index in (1, 2):
            processes.append(_start(binary, f"worker {index}", [
                "worker", "--listen", "127.0.0.1:0", "--data-dir", str(root / f"worker-{index}"), "--threads", "1",
            ], root / f"worker-{index}.log"))
        args = [
            "coordinator", "--listen", "127.0.0.1:0", "--data-dir", str(root / "coordinator"),
            "--workers", ",".join(p.address for p in processes), "--threads", "1",
        ]
        if "--import-root" in help_text:
            args += ["--import-root", str(import_root)]
        coordinator = _start(binary, "coordinator", args, root / "coordinator.log")
        processes.append(coordinator)
        yield Cluster(coordinator.address, processes, root, import_root, binary, help_text)
    finally:
        for process in reversed(processes):
            _stop(process.popen)


@pytest.fixture
def client(cluster):
    with cluster.client(timeout=120.0) as c:
        yield c


@pytest.fixture
def collection_name(request):
    """A collection name unique to the test."""
    return "t_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:100]
