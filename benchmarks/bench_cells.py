"""Cell networks: the presets' size against the published numbers, and a search candidate's fixed costs.

Part 1 builds the NASNet-A and PNASNet-5 presets at the settings of the paper's Tables 2 (CIFAR-10) and 3
(ImageNet mobile, 224×224) and prints parameters and FLOPs (`keras_sage.count_flops`) against the published
numbers. Part 2 measures what every trial of a cell search pays before its first useful step: building a
random cell's network (B = 5, N = 2, F = 24 on 32×32×3, the paper's search setting) and tracing its training
step, as Keras does by default and as `SageTuner` does it (variables built before the trace), then its
training speed once traced.

    .venv/bin/python benchmarks/bench_cells.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import keras_tuner
import numpy as np

from keras_sage.analysis import format_table
from keras_sage.hypermodels import CellSearchSpace, random_hyperparameters
from keras_sage.model_size import count_flops
from keras_sage.tuners.training import _build_training_state

# (preset, layout, published parameters, published FLOPs): Tables 2 and 3 of the paper.
PUBLISHED = [
    ("nasnet_a", "cifar", 3.3e6, None),
    ("pnasnet_5", "cifar", 3.2e6, None),
    ("nasnet_a", "imagenet", 5.3e6, 1.16e9),
    ("pnasnet_5", "imagenet", 5.4e6, 1.30e9),
]


def preset_sizes() -> list[dict]:
    rows = []
    for name, layout, params, flops in PUBLISHED:
        num_classes, input_shape = (10, (32, 32, 3)) if layout == "cifar" else (1000, (224, 224, 3))
        space = CellSearchSpace.preset(name, num_classes=num_classes, input_shape=input_shape, layout=layout)
        model = space.build(keras_tuner.HyperParameters())
        measured_flops = count_flops(model)
        rows.append(
            {
                "preset": name,
                "layout": layout,
                "N": space.num_repeats,
                "F": space.filters,
                "params": model.count_params(),
                "published params": int(params),
                "params ratio": model.count_params() / params,
                "FLOPs": measured_flops,
                "published FLOPs": int(flops) if flops else float("nan"),
                "FLOPs ratio": measured_flops / flops if flops else float("nan"),
            }
        )
        keras.backend.clear_session()
    return rows


def candidate_costs(repeats: int, steps: int, batch_size: int) -> list[dict]:
    space = CellSearchSpace(num_classes=100, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch_size * steps, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 100, len(images))
    rows = []
    for repeat in range(repeats):
        hp = random_hyperparameters(space, seed=repeat)
        started = time.perf_counter()
        model = space.build(hp)
        built = time.perf_counter()
        model.fit(images[:batch_size], labels[:batch_size], batch_size=batch_size, epochs=1, verbose=0)
        traced = time.perf_counter()
        model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)
        trained = time.perf_counter()
        keras.backend.clear_session()
        again = space.build(hp)
        prepared = time.perf_counter()
        _build_training_state(again, images[:batch_size], labels[:batch_size])
        again.fit(images[:batch_size], labels[:batch_size], batch_size=batch_size, epochs=1, verbose=0)
        traced_once = time.perf_counter()
        rows.append(
            {
                "candidate": repeat,
                "layers": len(model.layers),
                "params": model.count_params(),
                "build s": built - started,
                "first step s": traced - built,
                "first step s, SageTuner": traced_once - prepared,
                "train images/s": len(images) / (trained - traced),
            }
        )
        keras.backend.clear_session()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="random candidates in part 2")
    parser.add_argument("--steps", type=int, default=10, help="training steps timed per candidate")
    parser.add_argument("--batch-size", type=int, default=128)
    arguments = parser.parse_args()
    print(format_table(preset_sizes(), float_format="{:.3f}"))
    print()
    rows = candidate_costs(arguments.repeats, arguments.steps, arguments.batch_size)
    print(format_table(rows, float_format="{:.2f}"))
    for column in ("build s", "first step s", "first step s, SageTuner", "train images/s"):
        print(f"median {column}: {statistics.median(row[column] for row in rows):.2f}")


if __name__ == "__main__":
    main()
