"""Teacher-guided architecture search on CIFAR-10 with a ResNet-20 teacher (paper §4.2, at your scale).

Reads CIFAR-10 from a folder of class-named image folders (`DATA/train/<class>/*.jpg`), or extracts the
project's `cifar10-jpeg.tar.gz` into a cache folder first. Holds out a validation split (the paper's
45,000/5,000), takes the probe images from it, trains a ResNet teacher (cached), registers its stacks
L1-L3, then runs one search per α (by default TG-SAGE, α = 1, and performance-guided, α = 0) over the
paper's CNN space (§4.1-4.2) or, with `--space cells`, its space of NASNet/PNAS cells (§4.3: B = 5, N = 2,
8 cell RDMs against the teacher's 3), reranks each arm's best candidates with longer training, and prints
one table with the winner's parameters and FLOPs.

On a GPU the defaults run the paper-shaped experiment (ResNet-20 teacher, 2 premature epochs, 10-layer
space); on a CPU use small settings, e.g.:

    python examples/cifar10_search.py --data ../shared/data/cifar10-jpeg.tar.gz --train-limit 2000 \\
        --trials 3 --premature-epochs 1 --teacher-epochs 1 --mature-epochs 1 --probe-size 200 --max-layers 4

    python examples/cifar10_search.py --data ../shared/data/cifar10-jpeg.tar.gz --space cells --oracle tpe \
        --filters 8 --train-limit 1000 --trials 3 --premature-epochs 1 --teacher-epochs 1 --mature-epochs 1
"""

from __future__ import annotations

import argparse
import os
import tarfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from keras_sage.analysis import format_table, plot_search, search_summary, trial_records
from keras_sage.datasets import image_folder
from keras_sage.hypermodels import CellSearchSpace, CNNSearchSpace, resnet_cifar
from keras_sage.teachers import register_teacher
from keras_sage.tuners.sage_tuner import DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS, SCORE_OBJECTIVE, SageTuner

TEACHER_LAYERS = ["L1", "L2", "L3"]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CIFAR-10 folder (with train/) or .tar.gz")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/keras-sage-cifar10"), help="extract here")
    parser.add_argument("--output", type=Path, default=Path("cifar10-output"), help="working folder")
    parser.add_argument("--trials", type=int, default=100, help="trials per arm (M1)")
    parser.add_argument("--premature-epochs", type=int, default=2, help="epochs per candidate (E1)")
    parser.add_argument("--alphas", default="1,0", help="one search per α, comma-separated")
    parser.add_argument("--oracle", choices=("random", "tpe"), default="random")
    parser.add_argument("--space", choices=("cnn", "cells"), default="cnn", help="the search space")
    parser.add_argument("--max-layers", type=int, default=10, help="N_L of the CNN space")
    parser.add_argument("--num-repeats", type=int, default=2, help="N of the cell space")
    parser.add_argument("--filters", type=int, default=24, help="F of the cell space")
    parser.add_argument("--top-k", type=int, default=5, help="candidates per arm trained longer (M2)")
    parser.add_argument("--mature-epochs", type=int, default=30, help="epochs of the longer training (E2)")
    parser.add_argument("--teacher-depth", type=int, default=20, help="ResNet depth, 6n + 2")
    parser.add_argument("--teacher-epochs", type=int, default=60)
    parser.add_argument(
        "--probe-size", type=int, default=1000, help="probe images, from the validation split"
    )
    parser.add_argument("--train-limit", type=int, default=None, help="use only this many training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def cifar_folder(data: Path, cache: Path) -> Path:
    """The folder that holds `train/`, extracting a `.tar.gz` into `cache` once."""
    if data.is_dir():
        return data
    if not cache.joinpath("train").is_dir():
        print(f"extracting {data} into {cache}")
        cache.mkdir(parents=True, exist_ok=True)
        with tarfile.open(data) as archive:
            archive.extractall(cache, filter="data")
    return cache


def load_data(
    arguments: argparse.Namespace,
) -> tuple[tf.data.Dataset, tf.data.Dataset, np.ndarray, np.ndarray]:
    """Training and validation datasets (paper preprocessing) and the probe images from validation."""
    folder = cifar_folder(arguments.data, arguments.cache) / "train"
    train, validation = image_folder(
        folder,
        (32, 32),
        validation_split=0.1,
        subset="both",
        seed=arguments.seed,
        batch_size=arguments.batch_size,
    )
    if arguments.train_limit:
        train = train.take(-(-arguments.train_limit // arguments.batch_size))
    probe_images, probe_labels = [], []
    for images, labels in validation.unbatch().take(arguments.probe_size).batch(arguments.probe_size):
        probe_images, probe_labels = images.numpy(), labels.numpy()
    return train, validation, probe_images, probe_labels


def train_teacher(train, validation, arguments: argparse.Namespace, path: Path) -> None:
    if path.exists():
        print(f"teacher: reusing {path}")
        return
    keras.utils.set_random_seed(arguments.seed)
    teacher = resnet_cifar(depth=arguments.teacher_depth, num_classes=10, input_shape=(32, 32, 3))
    steps = arguments.teacher_epochs * int(train.cardinality())
    teacher.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.CosineDecay(0.1, steps), momentum=0.9, nesterov=True
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    teacher.fit(train, epochs=arguments.teacher_epochs, verbose=2)
    accuracy = teacher.evaluate(validation, verbose=0, return_dict=True)["accuracy"]
    print(f"teacher: {teacher.name}, validation accuracy {accuracy:.4f}, saved to {path}")
    teacher.save(path)


def make_oracle(kind: str, arguments: argparse.Namespace):
    if kind == "tpe":
        from keras_sage.tuners.oracles.tpe import TPEOracle

        return TPEOracle(
            objective=SCORE_OBJECTIVE,
            max_trials=arguments.trials,
            seed=arguments.seed,
            max_consecutive_failed_trials=DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS,
        )
    return None


def search_space(arguments: argparse.Namespace) -> keras_tuner.HyperModel:
    if arguments.space == "cells":
        return CellSearchSpace(
            num_repeats=arguments.num_repeats,
            filters=arguments.filters,
            num_classes=10,
            input_shape=(32, 32, 3),
        )
    return CNNSearchSpace(max_layers=arguments.max_layers, num_classes=10, input_shape=(32, 32, 3))


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    arguments.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train, validation, probe_images, probe_labels = load_data(arguments)
    model_path = arguments.output / f"teacher_resnet{arguments.teacher_depth}.keras"
    train_teacher(train, validation, arguments, model_path)
    teacher_path = arguments.output / "teacher.h5"
    register_teacher(
        str(model_path), probe_images, probe_labels, layers=TEACHER_LAYERS, path=teacher_path, overwrite=True
    )

    rows, records = [], {}
    for alpha in (float(value) for value in arguments.alphas.split(",")):
        name = f"alpha_{alpha:g}"
        tuner = SageTuner(
            search_space(arguments),
            teacher=teacher_path,
            alpha=alpha,
            premature_epochs=arguments.premature_epochs,
            oracle=make_oracle(arguments.oracle, arguments),
            max_trials=arguments.trials,
            seed=arguments.seed,
            probe=(probe_images, probe_labels),
            directory=arguments.output,
            project_name=name,
            overwrite=False,
        )
        tuner.search(train, validation_data=validation, verbose=0)
        reranked = tuner.rerank(arguments.top_k, arguments.mature_epochs, train, validation_data=validation)
        rows.append(search_summary(name, tuner, reranked))
        records[f"α = {alpha:g}"] = trial_records(tuner)
        print(format_table(rows[-1:]))

    print()
    print(format_table(rows))
    print(f"plot: {plot_search(records, arguments.output / 'search.png')}")
    print(f"total time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
