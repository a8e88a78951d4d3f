"""Soak: 100 tiny SageTuner trials in one process, recording resident memory (RSS) after every trial.

A long search in one process must stay healthy: memory flat, no crash. Each trial builds a random
candidate of the paper's CNN space (up to `--max-layers` layers) on scikit-learn's 8×8 digits, trains it
for `--steps` SGD steps and scores it against a teacher file (random-feature RDMs of the probe images), as
`keras-sage search` does; KerasTuner clears the Keras session before each build. After each trial the
benchmark reads VmRSS from /proc/self/status (and the peak, `resource.getrusage`'s ru_maxrss) and appends
one JSON line to `--out`; at the end it prints the RSS at trials 1, 10, 50 and 100 and the growth from
trial 10 to the last, per trial.

With `--trials-per-process K` the search runs as `keras-sage search --trials-per-process K` runs it: a
series of fresh processes of K trials each, each resuming the project (KerasTuner's reload) with the
oracle's `max_trials` capped K trials further; the RSS is then that of the process running the trial.

Run: `nice .venv/bin/python benchmarks/bench_soak.py [--trials 100] [--trials-per-process K]
[--out soak.jsonl]`. A crash (a signal such as glibc's abort) ends the process; the JSON lines written so
far remain.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from keras_sage.datasets import ImageSplits, digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore
from keras_sage.tuners import SageTuner

REPORTED_TRIALS = (1, 10, 50, 100)


def resident_mib() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class SoakTuner(SageTuner):
    """Appends one JSON line per ended trial: its number, status, RSS, peak RSS, the process's time and the
    clock."""

    def __init__(self, *args: object, out: Path, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.out = out
        self.start = time.monotonic()
        self.ended = len(out.read_text().splitlines()) if out.exists() else 0

    def on_trial_end(self, trial: object) -> None:
        super().on_trial_end(trial)
        self.ended += 1
        row = {
            "trial": self.ended,
            "status": str(trial.status),  # type: ignore[attr-defined]
            "rss_mib": round(resident_mib(), 1),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "seconds": round(time.monotonic() - self.start, 1),
            "time": time.time(),
        }
        with self.out.open("a") as file:
            file.write(json.dumps(row) + "\n")
        if self.ended in REPORTED_TRIALS or self.ended % 10 == 0:
            print(f"trial {row['trial']}: RSS {row['rss_mib']} MiB, {row['seconds']} s", flush=True)


def run_trials(arguments: argparse.Namespace, data: ImageSplits, folder: Path) -> None:
    """Runs the search in this process: all its trials, or `--stop-after` more of them."""
    tuner = SoakTuner(
        CNNSearchSpace(max_layers=arguments.max_layers, num_classes=10, input_shape=(8, 8, 1)),
        teacher=folder / "teacher.h5",
        premature_steps=arguments.steps,
        max_trials=arguments.trials,
        seed=arguments.seed,
        directory=folder,
        project_name="soak",
        overwrite=False,
        out=arguments.out,
    )
    tuner.oracle.max_consecutive_failed_trials = arguments.trials
    if arguments.stop_after:
        tuner.oracle.max_trials = min(arguments.trials, len(tuner.oracle.trials) + arguments.stop_after)
    tuner.search(
        data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), batch_size=32, verbose=0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5, help="premature SGD steps per trial")
    parser.add_argument("--max-layers", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("soak.jsonl"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trials-per-process", type=int, help="fresh processes of this many trials each")
    # A process of a --trials-per-process run: its project folder, and how many trials it runs.
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    data = digits(image_size=8, probe_size=50)
    if arguments.folder is not None:
        run_trials(arguments, data, arguments.folder)
        return
    arguments.out.unlink(missing_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="keras-sage-soak-"))
    store = TeacherStore.create(folder / "teacher.h5", data.x_probe, data.y_probe)
    flat = data.x_probe.reshape(len(data.x_probe), -1)
    rng = np.random.default_rng(0)
    store.add_rdms(
        {
            "L1": rdm(np.maximum(flat @ rng.normal(size=(64, 64)), 0), name="L1"),
            "L2": rdm(flat @ rng.normal(size=(64, 16)), name="L2"),
        }
    )
    if arguments.trials_per_process is None:
        run_trials(arguments, data, folder)
    else:
        while not arguments.out.exists() or len(arguments.out.read_text().splitlines()) < arguments.trials:
            command = [sys.executable, __file__, "--folder", str(folder), "--out", str(arguments.out)]
            command += ["--stop-after", str(arguments.trials_per_process), "--trials", str(arguments.trials)]
            command += ["--steps", str(arguments.steps), "--max-layers", str(arguments.max_layers)]
            subprocess.run([*command, "--seed", str(arguments.seed)], check=True)
    rows = [json.loads(line) for line in arguments.out.read_text().splitlines()]
    by_trial = {row["trial"]: row for row in rows}
    print("\n| trial | RSS (MiB) | peak RSS (MiB) | time (s) |\n|---:|---:|---:|---:|")
    for number in REPORTED_TRIALS:
        if number in by_trial:
            row = by_trial[number]
            elapsed = row["time"] - rows[0]["time"] + rows[0]["seconds"]
            print(f"| {number} | {row['rss_mib']} | {row['max_rss_mib']} | {elapsed:.0f} |")
    failed = sum(row["status"] != "COMPLETED" for row in rows)
    if len(rows) > 10:
        growth = (rows[-1]["rss_mib"] - by_trial[10]["rss_mib"]) / (rows[-1]["trial"] - 10)
        print(f"\n{len(rows)} trials ended ({failed} failed)")
        print(f"RSS growth after trial 10: {growth:.2f} MiB per trial")


if __name__ == "__main__":
    main()
