"""Time and peak memory of teacher-guidance (TG) evaluation against a 2-epoch premature trial.

For each configuration (a plain CNN with E conv endpoints at 32×32×3, a teacher file of 3 RDMs on N probe
images) it measures, each in a fresh subprocess:

- `TeacherGuidedScorer.similarities` (features subsampled to 4,096 per endpoint inside the extractor,
  batched, grouped to the 2 GB memory budget): wall time, CPU time of all the process's threads, and
  peak resident memory above the level just before the call (sampled every 5 ms from /proc/self/statm);
- the naive peer where it fits in memory: `Model.predict` of every endpoint's full output, then the same
  subsample, RDMs and comparisons;
- training throughput of the same model (SGD, batch 128, after a warm-up), extrapolated to a 2-epoch
  trial on CIFAR's 45,000 training images (90,000 examples), the paper's premature budget; in wall time and
  in CPU time. On a machine shared with other jobs the ratio of CPU times varies less than that of wall
  times, which depends on what else ran during each part.

Run: `.venv/bin/python benchmarks/bench_objective.py [--repeats 3] [--quick] [--config NAME ...]
[--baseline DIRECTORY] [--max-features N]`; prints a Markdown table, then the S_i of each configuration
(the same in every run: the model and teacher are seeded). With `--baseline` the keras_sage package under
DIRECTORY (an older commit's, from `git archive`) is measured too, in turns with this checkout's, and the
ratio of their TG times is printed. `--max-features` sets the scorer's `max_features` (default 4,096).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TRIAL_EXAMPLES = 2 * 45_000
CONFIGS = {
    # name: (endpoints, filters, probe images, whether the naive peer fits in memory)
    "8 endpoints, 1,000 probes": (8, 64, 1000, True),
    "8 endpoints, 5,000 probes": (8, 64, 5000, False),
    "50 endpoints, 1,000 probes": (50, 32, 1000, False),
    "50 endpoints, 5,000 probes": (50, 32, 5000, False),
}


class PeakMemory:
    """Samples this process's resident memory in a thread; `peak_bytes` is the maximum above the start."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self.peak_bytes = 0

    def _resident(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page_size

    def __enter__(self) -> PeakMemory:
        self.start = self._resident()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak_bytes = max(self.peak_bytes, self._resident() - self.start)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak_bytes = max(self.peak_bytes, self._resident() - self.start)


def plain_cnn(n_endpoints: int, filters: int):
    """E conv layers (3×3, ReLU) named layer_1..layer_E; stride 2 at one and two thirds of the depth."""
    import keras

    image = keras.Input((32, 32, 3))
    x = image
    for layer in range(1, n_endpoints + 1):
        stride = 2 if layer in (n_endpoints // 3 + 1, 2 * n_endpoints // 3 + 1) else 1
        x = keras.layers.Conv2D(
            filters, 3, strides=stride, padding="same", activation="relu", name=f"layer_{layer}"
        )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


def make_teacher(path: str, n_probe: int) -> None:
    """A teacher file of 3 RDMs of random features on N random probe images."""
    import numpy as np

    from keras_sage.rsa import rdm
    from keras_sage.teachers import TeacherStore

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_probe, 32, 32, 3), dtype=np.uint8)
    store = TeacherStore.create(path, images, rng.integers(0, 10, n_probe))
    for name in ("L1", "L2", "L3"):
        store.add_rdm(name, rdm(rng.random((n_probe, 256), dtype=np.float32), name=name))


def measure(config: str, teacher_path: str, naive: bool, max_features: int = 4096) -> dict:
    """One measurement, in this (fresh) process."""
    import keras
    import numpy as np

    from keras_sage.objective import TeacherGuidedScorer
    from keras_sage.rsa import compare, feature_subsample_indices, rdm
    from keras_sage.teachers import TeacherStore

    n_endpoints, filters, _, _ = CONFIGS[config]
    keras.utils.set_random_seed(0)
    model = plain_cnn(n_endpoints, filters)
    endpoints = [f"layer_{layer}" for layer in range(1, n_endpoints + 1)]
    teacher = TeacherStore.open(teacher_path)
    result = {}

    rng = np.random.default_rng(1)
    x = rng.standard_normal((128 * 6, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)
    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    result["train_seconds_per_example"] = (time.perf_counter() - started) / len(x)
    result["train_cpu_seconds_per_example"] = (time.process_time() - cpu_started) / len(x)

    objective = TeacherGuidedScorer(teacher, max_features=max_features)
    objective.similarities(plain_cnn(1, 8), ["layer_1"])  # warm up the RDM code path
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        similarities, _ = objective.similarities(model, endpoints)
        result["tg_seconds"] = time.perf_counter() - started
        result["tg_cpu_seconds"] = time.process_time() - cpu_started
    result["similarities"] = similarities
    result["tg_peak_bytes"] = memory.peak_bytes

    if naive:
        images = teacher.probe_images.astype(np.float32)
        with PeakMemory() as memory:
            started = time.perf_counter()
            extractor = keras.Model(model.input, [model.get_layer(name).output for name in endpoints])
            outputs = extractor.predict(images, batch_size=128, verbose=0)
            for output in outputs:
                flat = output.reshape(len(images), -1)
                kept = feature_subsample_indices(flat.shape[1], 4096, 0)
                student = rdm(flat[:, kept])
                for teacher_rdm in teacher.rdms().values():
                    compare(teacher_rdm, student)
            result["naive_seconds"] = time.perf_counter() - started
        result["naive_peak_bytes"] = memory.peak_bytes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the 1,000-probe configurations")
    parser.add_argument(
        "--config", action="append", choices=list(CONFIGS), help="only this configuration (repeatable)"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIRECTORY",
        help="also measure the keras_sage package under DIRECTORY (e.g. `git archive` of an older commit), "
        "in turns with this checkout's",
    )
    parser.add_argument(
        "--max-features",
        type=int,
        default=4096,
        help="features kept per endpoint (the scorer's max_features; 4,096 is the default, the paper's)",
    )
    parser.add_argument("--measure", nargs=3, metavar=("CONFIG", "TEACHER", "NAIVE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        config, teacher_path, naive = arguments.measure
        print(json.dumps(measure(config, teacher_path, naive == "1", arguments.max_features)))
        return

    # The code measured: this checkout's, and with --baseline the keras_sage found under another directory.
    versions = {"": None}
    if arguments.baseline:
        versions[" (baseline)"] = arguments.baseline
    rows, similarities, speedups = [], {}, []
    with tempfile.TemporaryDirectory() as directory:
        for config, (_, _, n_probe, naive) in CONFIGS.items():
            if (arguments.quick and n_probe > 1000) or (arguments.config and config not in arguments.config):
                continue
            teacher_path = os.path.join(directory, f"teacher_{n_probe}.h5")
            if not os.path.exists(teacher_path):
                make_teacher(teacher_path, n_probe)
            runs = {label: [] for label in versions}
            for repeat in range(arguments.repeats):
                # The versions take turns, each first in every other repeat, so that on a shared machine
                # both see the same load.
                order = list(versions.items())
                for label, code in order if repeat % 2 == 0 else order[::-1]:
                    runs[label].append(
                        measure_in_subprocess(config, teacher_path, naive, code, arguments.max_features)
                    )
            for label, label_runs in runs.items():
                similarities[config + label] = label_runs[0].pop("similarities")
                rows.append(table_row(config + label, label_runs, naive))
                print(rows[-1], flush=True)
            if arguments.baseline:
                ours, baseline = runs.values()
                ratios = {
                    kind: statistics.median(
                        run[key] / peer[key] for run, peer in zip(ours, baseline, strict=True)
                    )
                    for kind, key in (("wall", "tg_seconds"), ("CPU", "tg_cpu_seconds"))
                }
                speedups.append(
                    f"TG time / the baseline's, {config} (medians of the repeats' ratios): "
                    f"wall {ratios['wall']:.2f}, CPU {ratios['CPU']:.2f}"
                )
    print()
    print(
        "| configuration | TG time (s) | TG peak memory (GiB) | 2-epoch trial (s, extrapolated) | TG / trial "
        "| TG / trial in CPU time | naive peer (`Model.predict` of all endpoints) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    for config, config_similarities in similarities.items():
        print(
            f"S_i, {config}: "
            + ", ".join(f"{name} {value:.9f}" for name, value in config_similarities.items())
        )
    print("\n".join(speedups))


def measure_in_subprocess(
    config: str, teacher_path: str, naive: bool, code: str | None, max_features: int = 4096
) -> dict:
    """One measurement in a fresh process, of this checkout's keras_sage or of the one under `code`."""
    environment = dict(os.environ, PYTHONPATH=code) if code else None
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            config,
            teacher_path,
            "1" if naive else "0",
            "--max-features",
            str(max_features),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table_row(label: str, runs: list[dict], naive: bool) -> str:
    """The Markdown row of the medians of some runs."""
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "similarities"}
    trial_seconds = median["train_seconds_per_example"] * TRIAL_EXAMPLES
    trial_cpu_seconds = median["train_cpu_seconds_per_example"] * TRIAL_EXAMPLES
    naive_peer = (
        f"{median['naive_seconds']:.1f} s, {median['naive_peak_bytes'] / 2**30:.2f} GiB "
        f"({median['naive_peak_bytes'] / median['tg_peak_bytes']:.1f}× the memory)"
        if naive
        else "not run"
    )
    return (
        f"| {label} | {median['tg_seconds']:.1f} | {median['tg_peak_bytes'] / 2**30:.2f} | "
        f"{trial_seconds:.0f} | {100 * median['tg_seconds'] / trial_seconds:.1f}% | "
        f"{100 * median['tg_cpu_seconds'] / trial_cpu_seconds:.1f}% | {naive_peer} |"
    )


if __name__ == "__main__":
    main()
