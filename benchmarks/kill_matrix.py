"""Benchmark: the kill matrix (issue 21): `kill -9` of each process of a search at each moment of a trial.

For each process killed (a single-process search, the chief, a worker) and each moment (a trial
`building` its candidate, `training`, `scoring` against the teacher, `reporting` to the oracle, and
`after` the trial was reported), a tiny search of `--trials` trials (`kill_matrix_search.py`: digits at
8x8, 2 SGD steps per candidate, TPE) runs until a process holds still at that moment of its second trial
(a single process `after` its last, a worker its first); the driver kills it with SIGKILL and recovers
as a user would:

- single: the same command again, at once;
- chief (one worker): the chief restarted at once on the same fixed port (the worker, held still, goes on
  afterwards and reports to the new chief);
- worker (two workers): nothing: the chief re-queues the dead worker's trial after the worker timeout and
  the other worker runs it.

Measured: trials lost (a trial that had ended before the kill whose `trial.json` changed, or a trial
missing or not COMPLETED at the end), trials run twice (a trial the oracle ended twice, from
`finished-runs`), trials rerun (a trial begun again after the kill: the one interrupted, expected where the
kill came before the trial's report), and the recovery time: from the kill to the interrupted trial's
`trial.json` reading COMPLETED (for `after`, to the end of the whole search). Then the project lock's
overhead: taking and releasing it, and a search's project record, per trial.

Usage:

    .venv/bin/python benchmarks/kill_matrix.py                       # the 15 cells, 4 trials each
    .venv/bin/python benchmarks/kill_matrix.py --roles single --phases training after
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests"))
sys.path.insert(0, str(REPOSITORY / "benchmarks"))

import distributed_harness  # noqa: E402
from bench_distributed import make_teacher  # noqa: E402
from distributed_harness import Processes, free_port, kill, project, wait_for  # noqa: E402
from kill_matrix_search import PHASES  # noqa: E402

ROLES = ("single", "chief", "worker")
# Parallel tuning's times for the matrix: a chief restarted within CHIEF_TIMEOUT_S keeps its workers.
TIMES = {
    "KERAS_SAGE_HEARTBEAT_S": "1",
    "KERAS_SAGE_WORKER_TIMEOUT_S": "10",
    "KERAS_SAGE_CHIEF_TIMEOUT_S": "90",
    "KERAS_SAGE_CHIEF_WAIT_S": "180",
}


def ended_trials(directory: Path) -> dict[str, bytes]:
    """The `trial.json` of every trial that has ended (COMPLETED or FAILED), by trial id."""
    ended = {}
    for path in project(directory).glob("trial_*/trial.json"):
        try:
            text = path.read_bytes()
            status = json.loads(text)["status"]
        except (OSError, ValueError):
            continue
        if status in ("COMPLETED", "FAILED"):
            ended[path.parent.name.removeprefix("trial_")] = text
    return ended


def runs(directory: Path, name: str) -> collections.Counter[str]:
    path = directory / name
    lines = path.read_text().splitlines() if path.exists() else []
    return collections.Counter(line.split()[0] for line in lines)


def cell(workdir: Path, teacher: Path, role: str, phase: str, max_trials: int) -> dict[str, object]:
    """One cell of the matrix: kill `role` at `phase`, recover, measure."""
    directory = workdir / f"{role}-{phase}"
    # The second trial (the last, for a single process `after` it); a worker's first (the other worker may
    # take the rest).
    pause_trial = max_trials if role == "single" and phase == "after" else 1 if role == "worker" else 2
    port = free_port()
    with Processes(directory, teacher, "tpe", max_trials, port=port) as processes:
        pause = f"{phase}:{pause_trial}"
        if role == "single":
            held = victim = processes.start("single", pause_at=pause)
            everyone = [victim]
        else:
            chief = processes.start("chief")
            held = processes.start("worker0", pause_at=pause)
            everyone = [chief, held]
            if role == "worker":
                everyone.append(processes.start("worker1"))
            victim = chief if role == "chief" else held
        held_id = "tuner0" if role == "single" else "worker0"
        marker = directory / f"paused-{held_id}"
        wait_for(marker.exists, f"{held_id} at {phase}", everyone, 300)
        interrupted = marker.read_text()
        before = ended_trials(directory)
        begun_before = runs(directory, "begun-runs")
        killed_at = time.monotonic()
        kill(victim)
        recovered = [process for process in everyone if process is not victim]
        if role == "single":
            recovered = [processes.start("single")]
        elif role == "chief":
            recovered.append(processes.start("chief"))
            (directory / f"resume-{held_id}").write_text("")
        if phase == "after":
            processes.wait_all(recovered)
        else:
            wait_for(
                lambda: interrupted in ended_trials(directory),
                f"trial {interrupted} to end again",
                [],
                600,
            )
        recovery = time.monotonic() - killed_at
        processes.wait_all(recovered)
        statuses = [process.returncode for process in recovered]
    after = ended_trials(directory)
    changed = [trial_id for trial_id, text in before.items() if after.get(trial_id) != text]
    missing = max_trials - sum(json.loads(text)["status"] == "COMPLETED" for text in after.values())
    finished = runs(directory, "finished-runs")
    begun = runs(directory, "begun-runs")
    return {
        "role": role,
        "phase": phase,
        "interrupted trial": interrupted,
        "trials lost": len(changed) + missing,
        "run twice": sum(count > 1 for count in finished.values()),
        "rerun": sum(begun[trial_id] > begun_before.get(trial_id, 0) for trial_id in begun_before),
        "recovery s": round(recovery, 1),
        "exit statuses": statuses,
    }


def lock_overhead(repeats: int = 200) -> dict[str, float]:
    """Seconds to take and release the project lock, and to open a project (lock and record), each."""
    from keras_sage.project_lock import lock_project
    from keras_sage.tuners.project_record import open_project

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for _ in range(repeats):
            lock_project(folder).release()
        lock = (time.perf_counter() - start) / repeats
        start = time.perf_counter()
        for index in range(repeats):
            opened = open_project(Path(folder) / f"p{index}", "tuner0", overwrite=False)
            opened.lock.release()
        opened_time = (time.perf_counter() - start) / repeats
    return {"lock and release s": lock, "open project s": opened_time}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roles", nargs="+", choices=ROLES, default=list(ROLES))
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--out", type=Path, help="write the rows as JSON Lines here too")
    args = parser.parse_args()
    distributed_harness.SCRIPT = REPOSITORY / "benchmarks" / "kill_matrix_search.py"
    distributed_harness.TIMES.update(TIMES)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        teacher = make_teacher(workdir)
        for role in args.roles:
            for phase in args.phases:
                row = cell(workdir, teacher, role, phase, args.trials)
                print(json.dumps(row), flush=True)
                rows.append(row)
                if args.out:
                    with args.out.open("a") as file:
                        file.write(json.dumps(row) + "\n")
    overhead = lock_overhead()
    print("\n| process killed | moment | trials lost | run twice | rerun | recovery (s) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['role']} | {row['phase']} | {row['trials lost']} | {row['run twice']} | {row['rerun']} "
            f"| {row['recovery s']} |"
        )
    print(
        f"\nproject lock: {overhead['lock and release s'] * 1e6:.0f} µs to take and release; opening a "
        f"project (lock, project record) {overhead['open project s'] * 1e3:.2f} ms, once per search"
    )
    print(f"median recovery: {statistics.median(float(str(row['recovery s'])) for row in rows):.1f} s")


if __name__ == "__main__":
    main()
