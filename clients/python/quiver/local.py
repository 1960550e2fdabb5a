"""A local Quiver cluster for tests, benchmarks and experiments: one coordinator and N workers
started from a built ``quiver`` binary on 127.0.0.1 with ephemeral ports.

>>> from quiver.local import LocalCluster
>>> with LocalCluster("/path/to/quiver", workers=2) as cluster:
...     client = cluster.client()
...     client.collections()

Every process keeps its data below one folder (a temporary one unless given), writes its log
there, and is stopped by pid (SIGTERM, then SIGKILL after a grace period) when the cluster
closes. Start-up waits for each process's "listening on HOST:PORT" line, bounded in time.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

from .client import Client

__all__ = ["LocalCluster", "Process", "find_binary"]


def find_binary(repository: Union[str, os.PathLike, None] = None) -> Optional[Path]:
    """``$QUIVER_BIN``, else ``.build/debug/quiver`` or ``.build/release/quiver`` below the
    repository; None when none is executable. A ``$QUIVER_BIN`` that is not executable raises."""
    explicit = os.environ.get("QUIVER_BIN")
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise FileNotFoundError(f"QUIVER_BIN={explicit} is not an executable file")
        return Path(explicit)
    if repository is not None:
        for candidate in (Path(repository) / ".build/debug/quiver", Path(repository) / ".build/release/quiver"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


@dataclass
class Process:
    """One started quiver process: what it is, its Popen, the address it listens on, its log."""

    name: str
    popen: subprocess.Popen
    address: str
    log: Path


class LocalCluster:
    """Starts a coordinator and ``workers`` workers; use as a context manager or call :meth:`close`.

    Args:
        binary: the ``quiver`` executable.
        workers: number of shard workers.
        root: folder for data and logs (default: a new temporary folder, removed on close).
        threads: ``--threads`` for every process (None = the binary's default, all cores).
        import_root: folder for server-side loads, passed as ``--import-root`` when the binary
            supports it (default: ``root/import``).
        extra_coordinator_args, extra_worker_args: more flags for each process.
        start_timeout: seconds each process may take to print its listening line.
    """

    def __init__(
        self,
        binary: Union[str, os.PathLike],
        workers: int = 2,
        *,
        root: Union[str, os.PathLike, None] = None,
        threads: Optional[int] = None,
        import_root: Union[str, os.PathLike, None] = None,
        extra_coordinator_args: Sequence[str] = (),
        extra_worker_args: Sequence[str] = (),
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
    ):
        if workers < 1:
            raise ValueError("a cluster needs at least one worker")
        self.binary = Path(binary)
        self._owns_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="quiver-cluster-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.import_root = Path(import_root) if import_root is not None else self.root / "import"
        self.import_root.mkdir(parents=True, exist_ok=True)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.processes: List[Process] = []
        thread_args = ["--threads", str(threads)] if threads else []
        self.coordinator_help = subprocess.run(
            [str(self.binary), "coordinator", "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        try:
            for index in range(1, workers + 1):
                self.processes.append(self._start(f"worker-{index}", [
                    "worker", "--listen", "127.0.0.1:0", "--data-dir", str(self.root / f"worker-{index}"),
                    *thread_args, *extra_worker_args,
                ]))
            args = [
                "coordinator", "--listen", "127.0.0.1:0", "--data-dir", str(self.root / "coordinator"),
                "--workers", ",".join(p.address for p in self.processes), *thread_args, *extra_coordinator_args,
            ]
            if "--import-root" in self.coordinator_help:
                args += ["--import-root", str(self.import_root)]
            self.coordinator = self._start("coordinator", args)
            self.processes.append(self.coordinator)
        except BaseException:
            self.close()
            raise
        self.address = self.coordinator.address

    @property
    def imports_need_root(self) -> bool:
        """Whether this binary reads server-side load files only below ``import_root``."""
        return "--import-root" in self.coordinator_help

    def client(self, **kwargs) -> Client:
        """A :class:`quiver.Client` connected to the coordinator."""
        return Client(self.address, **kwargs)

    def _start(self, name: str, args: List[str]) -> Process:
        log = self.root / f"{name}.log"
        with open(log, "wb") as handle:
            popen = subprocess.Popen(
                [str(self.binary), *args], stdout=subprocess.PIPE, stderr=handle, stdin=subprocess.DEVNULL
            )
        lines: "queue.Queue[str]" = queue.Queue()

        def read() -> None:
            for raw in popen.stdout:  # drained until exit so the process never blocks on a full pipe
                lines.put(raw.decode("utf-8", "replace"))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if popen.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {popen.returncode} during start-up:\n{log.read_text(errors='replace')}"
                    ) from None
                continue
            if "listening on" in line:
                return Process(name, popen, line.rsplit(" ", 1)[-1].strip(), log)
        self._stop(popen)
        raise RuntimeError(f"{name} did not print its listening line within {self.start_timeout} s; log: {log}")

    def _stop(self, popen: subprocess.Popen) -> None:
        if popen.poll() is not None:
            return
        os.kill(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            os.kill(popen.pid, signal.SIGKILL)
            popen.wait(timeout=self.stop_timeout)

    def close(self) -> None:
        """Stops every process (coordinator first) and removes a temporary root."""
        for process in reversed(self.processes):
            self._stop(process.popen)
        self.processes = []
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
