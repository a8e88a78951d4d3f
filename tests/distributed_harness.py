"""Real processes for the distributed and crash-safety tests: a chief, workers, single-process searches.

Each process runs `tests/distributed/search.py` with this checkout first on its path. `Processes` starts
them with a log file each and kills whatever is still running when its block ends, so no test leaves
an orphan, whatever it asserts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPT = REPOSITORY / "tests" / "distributed" / "search.py"
SEED = 3  # search.py's oracle seed

# Short times for tests (the defaults are minutes): see keras_sage/tuners/distributed.py.
HEARTBEAT_S = 0.5
WORKER_TIMEOUT_S = 6.0
CHIEF_TIMEOUT_S = 5.0
TIMES = {
    "KERAS_SAGE_HEARTBEAT_S": str(HEARTBEAT_S),
    "KERAS_SAGE_WORKER_TIMEOUT_S": str(WORKER_TIMEOUT_S),
    "KERAS_SAGE_CHIEF_TIMEOUT_S": str(CHIEF_TIMEOUT_S),
    "KERAS_SAGE_CHIEF_WAIT_S": "180",
}
# For the tests that kill nothing: a chief or worker starved of the 2 cores for seconds is not given up on.
PATIENT_TIMES = {**TIMES, "KERAS_SAGE_WORKER_TIMEOUT_S": "120", "KERAS_SAGE_CHIEF_TIMEOUT_S": "120"}
# The test process's pid, which search.py dies with (`die_with_parent`).
PARENT_VARIABLE = "KERAS_SAGE_TEST_PARENT_PID"
# No test process may run longer than this.
PROCESS_TIMEOUT_S = 240.0


def write_teacher(directory: Path) -> Path:
    """Registers an untrained ResNet-8 on 20 digits probe images at 8x8 (what search.py's candidates see)."""
    from keras_sage.datasets import digits
    from keras_sage.hypermodels import resnet_cifar
    from keras_sage.teachers import register_teacher

    splits = digits(image_size=8, probe_size=20)
    teacher = resnet_cifar(depth=8, num_classes=10, input_shape=(8, 8, 1))
    path = directory / "teacher.h5"
    register_teacher(teacher, splits.x_probe, splits.y_probe, path=path, verbose=0)
    return path


# Ports below Linux's ephemeral range (32768-60999), which the kernel never hands to an outgoing
# connection: a port found free here stays free until the process under test binds it.
PORTS = range(20000, 32768)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, outside the kernel's ephemeral range.

    A port from `bind(("127.0.0.1", 0))` comes from the ephemeral range, so a connection that any process
    opens between the probe and the server's bind can take it; one below the range cannot be taken that way.
    """
    for port in random.Random().sample(PORTS, 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free TCP port among 200 tried in {PORTS.start}-{PORTS.stop - 1}")


class Processes:
    """Starts search processes and kills (SIGKILL) those still running when the `with` block ends.

    Args:
        directory: Where the searches' projects and the processes' logs go.
        teacher: The teacher file.
        oracle: `"tpe"`, `"reinforce"` or `"pareto"` (TPE over P and TG kept apart).
        max_trials: The searches' `max_trials`.
        port: The chief's port, for a chief and its workers.
        times: The heartbeat, timeouts and wait of parallel tuning, as environment variables: `TIMES`
            for the tests that kill a process, `PATIENT_TIMES` for the others.
    """

    def __init__(
        self,
        directory: Path,
        teacher: Path,
        oracle: str,
        max_trials: int,
        port: int | None = None,
        times: dict[str, str] = TIMES,
    ):
        self.directory = directory
        self.times = times
        self.teacher = teacher
        self.oracle = oracle
        self.max_trials = max_trials
        self.port = port
        self.running: list[subprocess.Popen] = []
        self.started: dict[int, float] = {}
        self.logs: dict[int, Path] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
            process.wait()

    def start(self, role: str = "single", pause_at: int | None = None) -> subprocess.Popen:
        """Starts `search.py` as `role` (`single`, `chief`, `worker0`, `worker1`, ...)."""
        environment = {
            **os.environ,
            **self.times,
            "PYTHONPATH": str(REPOSITORY),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            PARENT_VARIABLE: str(os.getpid()),
        }
        for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
            environment.pop(name, None)
        if role != "single":
            environment.update(
                KERASTUNER_TUNER_ID=role,
                KERASTUNER_ORACLE_IP="127.0.0.1",
                KERASTUNER_ORACLE_PORT=str(self.port),
            )
        command = [sys.executable, str(SCRIPT), str(self.directory), str(self.teacher), self.oracle]
        command.append(str(self.max_trials))
        if pause_at is not None:
            command += ["--pause-at", str(pause_at)]
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory.parent / f"{self.directory.name}-{role}-{len(self.running)}.log"
        with open(log, "w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
        self.running.append(process)
        self.started[process.pid] = time.monotonic()
        self.logs[process.pid] = log
        return process

    def wait(self, process: subprocess.Popen) -> int:
        """Waits for `process` (at most what is left of `PROCESS_TIMEOUT_S` since it started)."""
        left = PROCESS_TIMEOUT_S - (time.monotonic() - self.started[process.pid])
        try:
            return process.wait(timeout=max(left, 1.0))
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{process.args} ran past {PROCESS_TIMEOUT_S} s:\n{self.log(process)}"
            ) from None

    def wait_all(self, processes: list[subprocess.Popen]) -> dict[int, float]:
        """Waits for all `processes`; returns when (`time.time()`) each was seen to exit, by pid."""
        exited: dict[int, float] = {}
        while len(exited) < len(processes):
            for process in processes:
                if process.pid in exited:
                    continue
                if process.poll() is not None:
                    exited[process.pid] = time.time()
                elif time.monotonic() - self.started[process.pid] > PROCESS_TIMEOUT_S:
                    raise AssertionError(
                        f"{process.args} ran past {PROCESS_TIMEOUT_S} s:\n{self.log(process)}"
                    )
            time.sleep(0.1)
        return exited

    def wait_for_line(self, process: subprocess.Popen, text: str, timeout: float = PROCESS_TIMEOUT_S) -> None:
        """Waits until the process has printed `text`."""
        wait_for(lambda: text in self.log(process), repr(text), [process], timeout)

    def log(self, process: subprocess.Popen) -> str:
        """What the process printed."""
        return self.logs[process.pid].read_text()


def kill(process: subprocess.Popen) -> None:
    """kill -9."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(
    condition: Callable[[], bool], what: str, processes: list[subprocess.Popen], timeout: float
) -> None:
    """Waits until `condition()` holds; fails if it does not within `timeout` s or a process has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        exited = [p.args for p in processes if p.poll() is not None]
        if exited or time.monotonic() > deadline:
            raise AssertionError(f"waiting for {what}: {'exited: ' + str(exited) if exited else 'timed out'}")
        time.sleep(0.2)


def returned_at(log: str, event: str = "search returned") -> float:
    """When search.py's `search` returned, or its worker gave up (`time.time()`), from its log."""
    return float(log.split(f" {event} at ")[1].split()[0])


def project(directory: Path) -> Path:
    return directory / "search"


def trials(directory: Path) -> dict[str, dict]:
    """Every trial.json of the project, by trial id."""
    found = {}
    for path in sorted(project(directory).glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        found[trial["trial_id"]] = trial
    return found


def completed(directory: Path) -> int:
    """How many trials the project lists as COMPLETED."""
    try:
        return sum(trial["status"] == "COMPLETED" for trial in trials(directory).values())
    except (OSError, json.JSONDecodeError):  # A trial.json being replaced.
        return 0


def finished_runs(directory: Path) -> list[tuple[str, str, int]]:
    """(trial id, tuner id, the trial's seed) for each run of a trial that the oracle ended."""
    path = directory / "finished-runs"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(trial_id, tuner_id, int(seed)) for trial_id, tuner_id, seed in rows]


def oracle_state(directory: Path) -> dict:
    return json.loads((project(directory) / "oracle.json").read_text())


def score(trial: dict) -> float:
    return float(trial["score"])


def paused_trial(directory: Path, role: str) -> str | None:
    """The trial a process paused in (see search.py's `--pause-at`), if it has paused."""
    marker = directory / f"paused-{role}"
    return marker.read_text() if marker.exists() else None
