"""Is the input pipeline the bottleneck of a CIFAR trial? Pipeline images/s against training images/s.

(a) The input pipeline: `keras_sage.datasets.cifar10(data_dir)` itself, reading real CIFAR-10 stored as a
tensorflow-datasets data set on local disk. The project's `cifar10-jpeg.tar.gz` (real CIFAR-10, JPEG
re-encoded) is extracted into `--cache` and written once with `tfds.dataset_builders.store_as_tfds_dataset`
under tfds's own name and version for CIFAR-10 (`cifar10` 3.0.2, the same features), so tfds's `cifar10`
builder reads it exactly as it reads a downloaded copy. One pass over `splits.train` (45,000 augmented
images, batch 128, parallel map, prefetch) is timed: with the decoded images cached in memory (the
default, every pass after the first) and without the cache (every pass reads and decodes the files).

(b) Training: search candidates on 32×32×3 inputs, SGD (the search space's default optimizer), batch
128, `--steps` steps after `--warmup` steps, fed from real batches already in memory so that only the
model is timed: a representative CNNSearchSpace candidate of the paper's 10-layer space, `--random`
random candidates of that space (drawn as KerasTuner's random oracle does), and, if
`keras_sage.hypermodels.cells` exists, a CellSearchSpace candidate with B=5, N=2, F=24. Each candidate is
also trained for `--steps` steps straight from `splits.train`, to see whether feeding it slows it down.

Run: `.venv/bin/python benchmarks/bench_input.py [--repeats 3] [--steps 200] [--random 3]`; prints a
Markdown table of medians over `--repeats` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFDS_DISABLE_GCS", "1")

import keras
import keras_tuner
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_sage.datasets import cifar10
from keras_sage.hypermodels import CNNSearchSpace, random_hyperparameters

BATCH_SIZE = 128
INPUT_SHAPE = (32, 32, 3)
# tfds's label order for cifar10 (its `batches.meta.txt`), which is also the sorted folder names.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
REPOSITORY = Path(__file__).resolve().parents[1]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tarball", type=Path, default=REPOSITORY.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    )
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/keras-sage-bench-input"), help="never the repo"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed training steps first")
    parser.add_argument("--random", type=int, default=3, help="random CNNSearchSpace candidates")
    return parser.parse_args()


def cifar10_as_tfds(tarball: Path, cache: Path) -> Path:
    """A tfds data folder holding the real CIFAR-10 images as tfds's `cifar10`, written once."""
    data_dir = cache / "tensorflow_datasets"
    if tfds.builder("cifar10", data_dir=os.fspath(data_dir)).is_prepared():
        return data_dir
    folder = cache / "cifar10-jpeg"
    if not (folder / "train").is_dir():
        print(f"extracting {tarball} into {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(folder, filter="data")
    print(f"storing {folder} as the tfds data set cifar10 in {data_dir}")
    features = tfds.features.FeaturesDict(
        {
            "id": tfds.features.Text(),
            "image": tfds.features.Image(shape=INPUT_SHAPE),
            "label": tfds.features.ClassLabel(names=CIFAR10_CLASSES),
        }
    )
    tfds.dataset_builders.store_as_tfds_dataset(
        name="cifar10",
        version=str(tfds.builder_cls("cifar10").VERSION),
        features=features,
        split_datasets={split: jpeg_examples(folder / split, split) for split in ("train", "test")},
        data_dir=os.fspath(data_dir),
    )
    return data_dir


def jpeg_examples(folder: Path, split: str) -> tf.data.Dataset:
    """The `{id, image, label}` examples of one split's class folders, ids as tfds's cifar10 names them."""
    if sorted(path.name for path in folder.iterdir()) != list(CIFAR10_CLASSES):
        raise ValueError(f"{folder} must hold one folder per CIFAR-10 class: {CIFAR10_CLASSES}.")
    paths = [os.fspath(path) for name in CIFAR10_CLASSES for path in sorted((folder / name).glob("*.jpg"))]
    labels = [CIFAR10_CLASSES.index(Path(path).parent.name) for path in paths]
    ids = [f"{split}_{index:05d}" for index in range(len(paths))]
    return tf.data.Dataset.from_tensor_slices({"id": ids, "path": paths, "label": labels}).map(
        lambda example: {
            "id": example["id"],
            "image": tf.io.decode_jpeg(tf.io.read_file(example["path"]), channels=3),
            "label": example["label"],
        }
    )


def pass_seconds(dataset: tf.data.Dataset) -> tuple[float, int]:
    """Wall time of one full pass over `dataset`, and the number of images it yielded."""
    start = time.perf_counter()
    count = sum(int(labels.shape[0]) for _, labels in dataset)
    return time.perf_counter() - start, count


def pipeline_rates(data_dir: Path, repeats: int) -> dict[str, float]:
    """Median images/s of one pass over `cifar10(data_dir).train`, cached and uncached."""
    rates = {}
    for cache in (True, False):
        splits = cifar10(data_dir, download=False, batch_size=BATCH_SIZE, cache=cache)
        seconds, count = pass_seconds(splits.train)  # with cache=True: the pass that fills the cache
        assert count == splits.train_size == 45_000, count
        if cache:
            rates["cifar10().train, first pass (reads files, fills cache)"] = count / seconds
        runs = [pass_seconds(splits.train)[0] for _ in range(repeats)]
        label = "cached in memory" if cache else "cache=False, reads files"
        rates[f"cifar10().train, {label}"] = count / statistics.median(runs)
        print(f"pipeline cache={cache}: runs {[f'{count / run:.0f}' for run in runs]} images/s", flush=True)
    return rates


def representative_candidate() -> keras_tuner.HyperParameters:
    """A mid-sized candidate of the 10-layer space: 64 3×3 filters, ReLU, batchnorm, stride 2 at 3, 6, 9."""
    hp = keras_tuner.HyperParameters()
    hp.values["num_layers"] = 10
    for layer in range(1, 11):
        hp.values.update(
            {
                f"filters_{layer}": 64,
                f"kernel_height_{layer}": 3,
                f"kernel_width_{layer}": 3,
                f"stride_{layer}": 2 if layer in (3, 6, 9) else 1,
                f"activation_{layer}": "relu",
                f"normalization_{layer}": "batchnorm",
            }
        )
    return hp


def candidates(random_count: int) -> dict[str, Callable[[], keras.Model]]:
    """Name -> zero-argument builder of a compiled candidate model."""
    space = CNNSearchSpace(10, num_classes=10, input_shape=INPUT_SHAPE)
    builders: dict[str, Callable[[], keras.Model]] = {
        "CNN, 10 layers of 64 3×3 filters": lambda: space.build(representative_candidate())
    }
    for seed in range(random_count):
        hp = random_hyperparameters(space, seed)
        architecture = space.architecture(hp)
        name = f"CNN, random seed {seed} ({len(architecture.layers)} layers)"
        builders[name] = lambda hp=hp: space.build(hp)
    try:
        from keras_sage.hypermodels.cells import CellSearchSpace
    except ImportError:
        print("keras_sage.hypermodels.cells not found: no CellSearchSpace candidate")
    else:
        cells = CellSearchSpace(5, 2, 24, num_classes=10, input_shape=INPUT_SHAPE)
        builders["Cell, B=5 N=2 F=24"] = lambda: cells.build(keras_tuner.HyperParameters())
    return builders


def training_rates(model: keras.Model, batches: tf.data.Dataset, args: argparse.Namespace) -> list[float]:
    """Images/s of `args.repeats` fits of `args.steps` steps each, after a warm-up fit."""
    model.fit(batches, steps_per_epoch=args.warmup, epochs=1, verbose=0, shuffle=False)
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.fit(batches, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
        rates.append(args.steps * BATCH_SIZE / (time.perf_counter() - start))
    return rates


def main() -> None:
    args = parse_arguments()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    data_dir = cifar10_as_tfds(args.tarball, args.cache)
    pipeline = pipeline_rates(data_dir, args.repeats)
    splits = cifar10(data_dir, download=False, batch_size=BATCH_SIZE)
    pass_seconds(splits.train)  # fills the cache, as a search's first epoch does
    in_memory = tf.data.Dataset.from_tensor_slices(
        tuple(tf.concat(parts, 0) for parts in zip(*splits.train.take(8), strict=True))
    )
    in_memory = in_memory.batch(BATCH_SIZE, drop_remainder=True).cache().repeat()
    training = {}
    for name, build in candidates(args.random).items():
        keras.utils.clear_session()
        model = build()
        runs = training_rates(model, in_memory, args)
        start = time.perf_counter()
        model.fit(splits.train.repeat(), steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
        fed = args.steps * BATCH_SIZE / (time.perf_counter() - start)
        training[name] = (statistics.median(runs), fed, model.count_params())
        print(
            f"{name}: runs {[f'{rate:.0f}' for rate in runs]} images/s, fed by cifar10(): {fed:.0f}",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()}\n")

    print("| input pipeline | images/s |")
    print("|---|---|")
    for name, rate in pipeline.items():
        print(f"| {name} | {rate:,.0f} |")
    cached = pipeline["cifar10().train, cached in memory"]
    uncached = pipeline["cifar10().train, cache=False, reads files"]
    print(
        "\n| candidate | parameters | training images/s (in memory) | fed by cifar10().train | "
        "pipeline ÷ training (cached) | (cache=False) |"
    )
    print("|---|---|---|---|---|---|")
    for name, (rate, fed, parameters) in training.items():
        ratios = f"{cached / rate:.1f}× | {uncached / rate:.1f}×"
        print(f"| {name} | {parameters:,} | {rate:,.0f} | {fed:,.0f} | {ratios} |")


if __name__ == "__main__":
    main()
