"""Benchmark: a correlation RDM plus its Pearson comparison with a teacher RDM (the paper's §3.1).

Compares, in one run and on the same float32 ReLU-like activations:
- keras_sage.rsa with the numpy backend and with the TensorFlow backend (input already a tf.Tensor);
- scipy.spatial.distance.pdist(x, "correlation") + scipy.stats.pearsonr;
- rsatoolbox (the `bench` extra): calc_rdm(..., method="correlation") + compare(..., method="corr");
- a bare float32 `x @ x.T` of the same size: the machine's limit for any method that is one GEMM.

Prints a Markdown table of medians and ratios, the largest differences from scipy, and the peak memory of
the numpy backend beyond its input (tracemalloc, and peak RSS in a fresh subprocess). The three fast
methods run in turn, round after round, so that on a shared machine all see the same load.

Usage:

    .venv/bin/python benchmarks/bench_rsa.py                       # n ∈ {1000, 5000} × d ∈ {4096, 16384}
    .venv/bin/python benchmarks/bench_rsa.py --sizes 5000x16384 --threads 1
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import rsatoolbox
import scipy.stats
import tensorflow as tf
from scipy.spatial.distance import pdist
from threadpoolctl import threadpool_info, threadpool_limits

from keras_sage import rsa

DEFAULT_SIZES = "1000x4096,1000x16384,5000x4096,5000x16384"

# Measures the peak RSS that rdm() + compare() add to a process that already holds the input: Linux resets
# the high-water mark VmHWM when "5" is written to /proc/self/clear_refs.
RSS_PROBE = """
import sys, numpy as np
from keras_sage import rsa

def status_bytes(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

n, d = int(sys.argv[1]), int(sys.argv[2])
x = np.empty((n, d), dtype=np.float32)
np.maximum(np.random.default_rng(0).standard_normal(dtype=np.float32, out=x), 0, out=x)
teacher = np.random.default_rng(1).random(n * (n - 1) // 2, dtype=np.float32)
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
before = status_bytes("VmRSS")
rsa.compare(rsa.rdm(x, backend="numpy"), teacher)
print(status_bytes("VmHWM") - before)
"""


def activations(n: int, features: int, seed: int) -> np.ndarray:
    return np.maximum(np.random.default_rng(seed).standard_normal((n, features), dtype=np.float32), 0)


def timed(function, repeats: int, slow_seconds: float) -> tuple[list[float], float, object]:
    """Runs `function` up to `repeats` times; stops after one run that takes longer than `slow_seconds`.

    Returns the wall-clock times, the process CPU time per wall-clock second over all runs (how many
    cores were kept busy), and the last result.
    """
    times, cpu_seconds, result = [], 0.0, None
    for _ in range(repeats):
        cpu_start, start = time.process_time(), time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
        cpu_seconds += time.process_time() - cpu_start
        if times[-1] > slow_seconds:
            break
    return times, cpu_seconds / sum(times), result


def timed_in_turn(functions: dict, repeats: int) -> dict:
    """Times fast functions in turn, round after round, so that all see the same load on a shared machine.

    Each function runs once untimed first (TensorFlow's first call sets up its kernels). Returns, per
    name, what `timed` returns.
    """
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    cpu_seconds = dict.fromkeys(functions, 0.0)
    results = {}
    for _ in range(repeats):
        for name, function in functions.items():
            cpu_start, start = time.process_time(), time.perf_counter()
            results[name] = function()
            times[name].append(time.perf_counter() - start)
            cpu_seconds[name] += time.process_time() - cpu_start
    return {name: (times[name], cpu_seconds[name] / sum(times[name]), results[name]) for name in functions}


def peak_traced_bytes(function) -> int:
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def peak_rss_bytes(n: int, features: int) -> int:
    output = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(n), str(features)], capture_output=True, text=True, check=True
    )
    return int(output.stdout.strip())


def bench_size(n: int, features: int, repeats: int, slow_seconds: float) -> list[str]:
    x = activations(n, features, seed=0)
    x_tensor = tf.constant(x)
    teacher = rsa.rdm(activations(n, 256, seed=1), backend="numpy").values
    teacher_rsatoolbox = rsatoolbox.rdm.RDMs(
        dissimilarities=teacher[None], dissimilarity_measure="correlation"
    )

    def ours(backend, inputs):
        def run():
            result = rsa.rdm(inputs, backend=backend)
            return result.values, rsa.compare(result, teacher)

        return run

    def scipy_pdist():
        values = pdist(x, "correlation")
        return values, scipy.stats.pearsonr(values, teacher).statistic

    def rsatoolbox_rdm():
        result = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="correlation")
        similarity = rsatoolbox.rdm.compare(result, teacher_rsatoolbox, method="corr")[0, 0]
        return result.get_vectors()[0], similarity

    def bare_gemm():
        return x @ x.T, None

    fast = {
        "keras-sage numpy": ours("numpy", x),
        "keras-sage TF": ours("tensorflow", x_tensor),
        "bare float32 x @ x.T": bare_gemm,
    }
    runs = timed_in_turn(fast, repeats)
    runs["scipy pdist + pearsonr"] = timed(scipy_pdist, repeats, slow_seconds)
    runs["rsatoolbox"] = timed(rsatoolbox_rdm, repeats, slow_seconds)
    reference_values, reference_similarity = runs["scipy pdist + pearsonr"][2]
    ours_median = statistics.median(runs["keras-sage numpy"][0])
    rows = []
    for method, (times, cores_busy, (values, similarity)) in runs.items():
        median = statistics.median(times)
        if similarity is None:
            accuracy = "–"
        else:
            rdm_error = np.max(np.abs(np.asarray(values, dtype=np.float64) - reference_values))
            accuracy = f"{rdm_error:.1e} / {abs(similarity - reference_similarity):.1e}"
        rows.append(
            f"| {n}×{features} | {method} | {median:.3f} | {len(times)} | {median / ours_median:.2f} "
            f"| {cores_busy:.1f} | {accuracy} |"
        )
    traced = peak_traced_bytes(ours("numpy", x))
    rss = peak_rss_bytes(n, features)
    rows.append(
        f"| {n}×{features} | numpy peak memory beyond the {x.nbytes / 2**20:.0f} MiB input | "
        f"tracemalloc {traced / 2**20:.0f} MiB ({traced / x.nbytes:.2f}×), "
        f"RSS {rss / 2**20:.0f} MiB ({rss / x.nbytes:.2f}×) | | | | |"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated n×d, e.g. 1000x4096")
    parser.add_argument("--repeats", type=int, default=5, help="runs per method (the median is reported)")
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=20.0,
        help="scipy and rsatoolbox stop repeating after a run slower than this",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="limit BLAS and TensorFlow to this many threads"
    )
    arguments = parser.parse_args()
    warnings.simplefilter("ignore", category=DeprecationWarning)
    if arguments.threads:
        threadpool_limits(arguments.threads)  # stays in effect for the whole run
        tf.config.threading.set_intra_op_parallelism_threads(arguments.threads)
        tf.config.threading.set_inter_op_parallelism_threads(arguments.threads)
    blas = ", ".join(f"{pool['internal_api']} {pool['num_threads']} threads" for pool in threadpool_info())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average {os.getloadavg()}")
    print(f"numpy {np.__version__} ({blas}), scipy {scipy.__version__}, TensorFlow {tf.__version__}")
    gpus = len(tf.config.list_physical_devices("GPU"))
    print(f"rsatoolbox {importlib.metadata.version('rsatoolbox')}, GPUs visible to TensorFlow: {gpus}")
    print()
    print(
        "| n×d | method | median s | runs | × keras-sage numpy | CPU s / s | max abs diff vs scipy: RDM / r |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in arguments.sizes.split(","):
        n, features = (int(part) for part in size.lower().split("x"))
        for row in bench_size(n, features, arguments.repeats, arguments.slow_seconds):
            print(row, flush=True)
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
