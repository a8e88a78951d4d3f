"""Benchmark: KerasTuner's parallel tuning with SageTuner, a chief and 1, 2 or 4 workers on this machine.

A tiny search (tests/distributed/search.py: digits at 8x8, a CNN of at most 2 layers, 2 SGD steps per
candidate, TPE) is about overhead, not speed-up: on a 2-core machine more workers share the same cores.
Measured, for each number of workers:
- trials/hour: trials divided by the time from the first trial's start to the last trial's end;
- wall: from starting the processes to the chief's `search` returning (TensorFlow's import included);
- chief return / chief exit: from the last trial's end to the chief's `search` returning, and to its
  process exiting (Python's final garbage collection of TensorFlow's objects comes in between).
Then the chief's own work per trial, in this process: a `TPEOracle` on a 10-layer CNN space behind the
chief's gRPC servicer, each trial created, reported and ended through the servicer's handlers with
KerasTuner's messages (no network), in ms per trial.

Usage:

    .venv/bin/python benchmarks/bench_distributed.py                  # 1, 2, 4 workers, 8 trials
    .venv/bin/python benchmarks/bench_distributed.py --workers 1 2 --trials 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests"))

from distributed_harness import Processes, free_port, project, returned_at  # noqa: E402


def make_teacher(directory: Path) -> Path:
    from keras_sage.datasets import digits
    from keras_sage.hypermodels import resnet_cifar
    from keras_sage.teachers import register_teacher

    splits = digits(image_size=8, probe_size=20)
    path = directory / "teacher.h5"
    teacher = resnet_cifar(depth=8, num_classes=10, input_shape=(8, 8, 1))
    register_teacher(teacher, splits.x_probe, splits.y_probe, path=path, verbose=0)
    return path


def parallel_run(directory: Path, teacher: Path, workers: int, max_trials: int) -> dict[str, float]:
    """One search with a chief and `workers` workers; its times."""
    started = time.time()
    with Processes(directory, teacher, "tpe", max_trials, port=free_port()) as processes:
        chief = processes.start("chief")
        running = [processes.start(f"worker{i}") for i in range(workers)]
        exited = processes.wait_all([chief, *running])
        for process in (chief, *running):
            if process.returncode != 0:
                raise RuntimeError(f"{process.args} failed:\n{processes.log(process)}")
        chief_returned = returned_at(processes.log(chief))
    trial_dirs = list(project(directory).glob("trial_*"))
    first_start = min(path.stat().st_mtime for path in (project(directory).glob("trial_*/trial.json")))
    first_start = min(first_start, *(path.stat().st_ctime for path in trial_dirs))
    last_end = max(path.stat().st_mtime for path in project(directory).glob("trial_*/trial.json"))
    return {
        "trials": len(trial_dirs),
        "trials_per_hour": len(trial_dirs) / (last_end - first_start) * 3600,
        "wall": chief_returned - started,
        "chief_return": chief_returned - last_end,
        "chief_exit": exited[chief.pid] - last_end,
    }


def chief_overhead_ms(n_trials: int, layers: int) -> list[float]:
    """The chief's work per trial (create, report, end through its servicer), in ms, trial by trial."""
    import keras_tuner

    from keras_sage.hypermodels import CNNSearchSpace
    from keras_sage.tuners import TPEOracle, _compat, distributed

    with tempfile.TemporaryDirectory() as scratch:
        oracle = TPEOracle(objective=keras_tuner.Objective("score", "max"), max_trials=n_trials, seed=1)
        _compat.set_oracle_project_dir(oracle, scratch, "p")
        oracle.verbose = 0  # KerasTuner's per-trial tables would be timed too.
        hp = oracle.get_space()
        CNNSearchSpace(max_layers=layers, num_classes=10, input_shape=(16, 16, 1)).declare_hyperparameters(hp)
        oracle.update_space(hp)
        service, _ = _compat.oracle_service()
        servicer = distributed._chief_servicer(oracle, distributed.Timeouts())
        times = []
        for number in range(n_trials):
            start = time.perf_counter()
            created = servicer.CreateTrial(service.CreateTrialRequest(tuner_id="worker0"), None)
            trial_id = created.trial.trial_id
            servicer.GetTrial(service.GetTrialRequest(trial_id=trial_id), None)  # a heartbeat
            servicer.UpdateTrial(
                service.UpdateTrialRequest(trial_id=trial_id, metrics={"score": number % 7 / 7}, step=0), None
            )
            trial = keras_tuner.engine.trial.Trial.from_proto(created.trial)
            trial.status = "COMPLETED"
            servicer.EndTrial(service.EndTrialRequest(trial=trial.to_proto()), None)
            times.append((time.perf_counter() - start) * 1000)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--overhead-trials", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} at the start")
    with tempfile.TemporaryDirectory() as scratch:
        teacher = make_teacher(Path(scratch))
        rows = []
        for workers in args.workers:
            result = parallel_run(Path(scratch) / f"w{workers}", teacher, workers, args.trials)
            rows.append((workers, result))
            print(f"  {workers} worker(s) done: {result}", flush=True)
    overhead = chief_overhead_ms(args.overhead_trials, layers=10)
    print()
    print("| workers | trials | trials/hour | wall (s) | chief's search returns (s) | chief exits (s) |")
    print("|--------:|-------:|------------:|---------:|---------------------------:|----------------:|")
    for workers, r in rows:
        print(
            f"| {workers} | {r['trials']:.0f} | {r['trials_per_hour']:.0f} | {r['wall']:.1f} | "
            f"{r['chief_return']:.2f} | {r['chief_exit']:.1f} |"
        )
    print()
    print(
        f"chief's work per trial (TPEOracle, 10-layer CNN space, {args.overhead_trials} trials through its "
        f"servicer): median {statistics.median(overhead):.1f} ms, first 10 "
        f"{statistics.median(overhead[:10]):.1f} ms, last 10 {statistics.median(overhead[-10:]):.1f} ms"
    )
    print(f"load average {os.getloadavg()[0]:.1f} at the end; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
