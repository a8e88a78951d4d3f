"""The paper's §4.4 end to end, as a SIMULATION: a search guided by (simulated) neural recordings.

No real recordings ship with keras-sage, so this example makes its own "brain" and records from it:

1. The hidden network: one architecture of the search space (`CNNSearchSpace` on scikit-learn's 8×8
   digits: 3 layers of 32 filters with 5×5 kernels, stride 1, ReLU, no normalization, no skip
   connections), trained briefly. Its family is defined concretely as the candidates of the same depth
   (3 layers) whose kernel side, averaged over their layers' heights and widths, is within 1 of 5.
2. Recordings: 3 "regions" at increasing depth, V1 = layer_1, V4 = layer_2, IT = layer_3; each region
   is a few hundred "sites", units of that layer drawn at random, whose spike counts to each probe image
   are Poisson with a rate proportional to the unit's activation (plus a baseline), over several repeats:
   an array (images × sites × repeats) per region. They are saved as `recordings.npz` in the format of
   docs/recordings.md.
3. Registration: `register_recordings` stores one RDM per region with its noise ceiling.
4. Two TPE searches over `CNNSearchSpace` with the same seed and budget: guided by the recordings,
   P + α·TG (TG normalised by the noise ceilings), and α = 0 (validation accuracy alone). The hidden
   network is never shown to either search; only the recordings are.
5. For each arm's best candidate (highest score): whether it belongs to the hidden network's family, and
   its distance to the hidden network in hyperparameters, |depth − 3| + the mean over its layers of
   |kernel side − 5| / 2 (in steps of the kernel choices 1, 3, 5, 7). The margin is α = 0's distance
   minus the guided arm's (positive: the guided search got closer). Repeated over seeds (each seed a new
   hidden network, new recordings and new searches), it is printed with its mean and spread.

Run: `python examples/neural_teacher.py [--seeds 0 1 2] [--trials 16]`; `--help` for the settings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import keras_tuner
import numpy as np

from keras_sage.analysis import format_table
from keras_sage.datasets import ImageSplits, digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.rsa import NoiseCeilingWarning
from keras_sage.teachers import TeacherStore, register_recordings
from keras_sage.tuners import TPEOracle
from keras_sage.tuners.sage_tuner import DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS, SCORE_OBJECTIVE, SageTuner

IMAGE_SIZE = 8
HIDDEN_DEPTH = 3
HIDDEN_KERNEL = 5
HIDDEN_FILTERS = 32
# Kernel sides step by 2 in the search space (1, 3, 5, 7); distances count those steps.
KERNEL_STEP = 2
REGIONS = {"V1": "layer_1", "V4": "layer_2", "IT": "layer_3"}


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=Path("demo-output/neural-teacher"), help="working folder"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one experiment per seed")
    parser.add_argument("--trials", type=int, default=10, help="trials per search")
    parser.add_argument("--startup-trials", type=int, default=4, help="random trials before TPE starts")
    parser.add_argument("--premature-steps", type=int, default=15, help="SGD steps per candidate")
    parser.add_argument("--max-layers", type=int, default=4, help="N_L of the CNN space")
    parser.add_argument("--alpha", type=float, default=1.0, help="α of the guided search")
    parser.add_argument("--hidden-epochs", type=int, default=3, help="training of the hidden network")
    parser.add_argument("--sites", type=int, default=200, help="sites per region")
    parser.add_argument("--repeats", type=int, default=4, help="repeats per image")
    parser.add_argument("--mean-rate", type=float, default=0.3, help="mean spike count of a site")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args(argv)


def hidden_hyperparameters(max_layers: int) -> keras_tuner.HyperParameters:
    """The hidden network as a point of `CNNSearchSpace(max_layers)`: every layer of it set explicitly."""
    hp = keras_tuner.HyperParameters()
    hp.values["num_layers"] = HIDDEN_DEPTH
    for layer in range(1, max_layers + 1):
        hp.values.update(
            {
                f"filters_{layer}": HIDDEN_FILTERS,
                f"kernel_height_{layer}": HIDDEN_KERNEL,
                f"kernel_width_{layer}": HIDDEN_KERNEL,
                f"stride_{layer}": 1,
                f"activation_{layer}": "relu",
                f"normalization_{layer}": "none",
            }
        )
    return hp


def train_hidden_network(space: CNNSearchSpace, data: ImageSplits, epochs: int, seed: int) -> keras.Model:
    """The hidden network, trained for `epochs` on the digits' training split."""
    keras.utils.set_random_seed(seed)
    model = space.build(hidden_hyperparameters(space.max_layers))
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def simulate_recordings(
    model: keras.Model,
    images: np.ndarray,
    sites: int,
    repeats: int,
    mean_rate: float,
    seed: int,
    baseline: float = 0.1,
) -> dict[str, np.ndarray]:
    """Poisson spike counts of `sites` random units per region: (images, sites, repeats) per region.

    A site is a unit (one channel at one position) of the region's layer that responds to some probe
    image differently from others; its rate for an image is `baseline` plus its activation scaled so that
    the region's mean rate is `mean_rate`.
    """
    rng = np.random.default_rng(seed)
    layers = [model.get_layer(layer).output for layer in REGIONS.values()]
    outputs = keras.Model(model.input, layers)(images, training=False)
    recordings = {}
    for region, output in zip(REGIONS, outputs, strict=True):
        activations = np.asarray(output).reshape(len(images), -1)
        varying = np.flatnonzero(np.ptp(activations, axis=0) > 0)
        chosen = rng.choice(varying, size=min(sites, len(varying)), replace=False)
        drive = np.maximum(activations[:, chosen], 0.0)
        rates = baseline + drive * (mean_rate - baseline) / max(float(drive.mean()), 1e-12)
        recordings[region] = rng.poisson(rates[:, :, None], size=(*rates.shape, repeats)).astype(np.float32)
    return recordings


def kernel_sides(values: Mapping[str, Any]) -> list[float]:
    """Each layer's mean kernel side, (height + width) / 2, of a candidate's hyperparameter values."""
    return [
        (values[f"kernel_height_{layer}"] + values[f"kernel_width_{layer}"]) / 2
        for layer in range(1, int(values["num_layers"]) + 1)
    ]


def distance_to_hidden(values: Mapping[str, Any]) -> float:
    """|depth − 3| + mean over the candidate's layers of |kernel side − 5| / 2."""
    sides = kernel_sides(values)
    kernel_steps = float(np.mean([abs(side - HIDDEN_KERNEL) for side in sides])) / KERNEL_STEP
    return abs(int(values["num_layers"]) - HIDDEN_DEPTH) + kernel_steps


def in_hidden_family(values: Mapping[str, Any]) -> bool:
    """Same depth as the hidden network, and a mean kernel side within 1 of its 5."""
    return (
        int(values["num_layers"]) == HIDDEN_DEPTH and abs(np.mean(kernel_sides(values)) - HIDDEN_KERNEL) <= 1
    )


def run_arm(
    name: str,
    alpha: float,
    space: CNNSearchSpace,
    data: ImageSplits,
    teacher: TeacherStore,
    arguments: argparse.Namespace,
    seed: int,
    directory: Path,
) -> dict[str, Any]:
    """One TPE search; the best candidate's score, P, TG, distance to the hidden network and family."""
    tuner = SageTuner(
        space,
        teacher=teacher,
        alpha=alpha,
        normalise_by_ceiling=True,
        premature_steps=arguments.premature_steps,
        oracle=TPEOracle(
            objective=SCORE_OBJECTIVE,
            max_trials=arguments.trials,
            n_startup_trials=arguments.startup_trials,
            seed=seed,
            max_consecutive_failed_trials=DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS,
        ),
        seed=seed,
        probe=(data.x_probe, data.y_probe),
        directory=directory,
        project_name=name,
        overwrite=True,
    )
    tuner.search(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        batch_size=arguments.batch_size,
        verbose=0,
    )
    best = tuner.oracle.get_best_trials(1)[0]
    completed = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    metrics = best.metrics
    return {
        "arm": name,
        "score": best.score,
        "P": metrics.get_last_value("premature_accuracy"),
        "TG": metrics.get_last_value("teacher_guidance"),
        "depth": int(best.hyperparameters.values["num_layers"]),
        "kernel": float(np.mean(kernel_sides(best.hyperparameters.values))),
        "distance": distance_to_hidden(best.hyperparameters.values),
        "in family": in_hidden_family(best.hyperparameters.values),
        "family trials": sum(in_hidden_family(trial.hyperparameters.values) for trial in completed),
        "trials": len(completed),
    }


def run_seed(seed: int, data: ImageSplits, arguments: argparse.Namespace) -> list[dict[str, Any]]:
    """A hidden network, its recordings and teacher file, and both searches, for one seed."""
    directory = arguments.output / f"seed-{seed}"
    directory.mkdir(parents=True, exist_ok=True)
    space = CNNSearchSpace(
        max_layers=arguments.max_layers, num_classes=data.num_classes, input_shape=data.x_train.shape[1:]
    )
    hidden = train_hidden_network(space, data, arguments.hidden_epochs, seed)
    accuracy = hidden.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)["accuracy"]
    recordings = simulate_recordings(
        hidden, data.x_probe, arguments.sites, arguments.repeats, arguments.mean_rate, seed
    )
    recordings_path = directory / "recordings.npz"
    np.savez(recordings_path, **recordings)
    teacher_path = directory / "monkey.h5"
    teacher_path.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoiseCeilingWarning)  # the ceilings are printed below
        teacher = register_recordings(
            recordings_path, data.x_probe, data.y_probe, path=teacher_path, min_ceiling=None, seed=seed
        )
    ceilings = ", ".join(
        f"{name} {ceiling.ceiling:.2f}" for name, ceiling in teacher.noise_ceilings().items()
    )
    print(f"seed {seed}: hidden network validation accuracy {accuracy:.3f}; noise ceilings {ceilings}")
    rows = []
    for name, alpha in (("guided", arguments.alpha), ("alpha=0", 0.0)):
        started = time.perf_counter()
        row = run_arm(name, alpha, space, data, teacher, arguments, seed, directory)
        row["seed"] = seed
        rows.append(row)
        print(
            f"  {name}: best depth {row['depth']}, mean kernel {row['kernel']:.1f}, distance "
            f"{row['distance']:.2f}, {row['family trials']}/{row['trials']} trials in the family "
            f"({time.perf_counter() - started:.0f} s)"
        )
    return rows


def margins(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """Per seed, α = 0's best candidate's distance to the hidden network minus the guided one's."""
    by_seed: dict[int, dict[str, float]] = {}
    for row in rows:
        by_seed.setdefault(row["seed"], {})[row["arm"]] = row["distance"]
    return [arms["alpha=0"] - arms["guided"] for arms in by_seed.values()]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    arguments = parse_arguments(argv)
    arguments.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = digits(image_size=IMAGE_SIZE, probe_size=100, seed=0)
    print(
        "SIMULATION: the recordings are Poisson spike counts of a hidden network's units, not a brain's.\n"
        f"hidden network: {HIDDEN_DEPTH} layers, {HIDDEN_KERNEL}×{HIDDEN_KERNEL} kernels; "
        f"{arguments.sites} sites × {arguments.repeats} repeats per region; "
        f"{arguments.trials} trials per search, α = {arguments.alpha:g} vs 0"
    )
    rows = [row for seed in arguments.seeds for row in run_seed(seed, data, arguments)]
    shown = ("seed", "arm", "score", "P", "TG", "depth", "kernel", "distance", "in family", "family trials")
    print()
    print(format_table([{key: row[key] for key in shown} for row in rows], float_format="{:.3f}"))
    per_seed = margins(rows)
    spread = statistics.stdev(per_seed) if len(per_seed) > 1 else float("nan")
    family = {
        arm: sum(row["in family"] for row in rows if row["arm"] == arm) for arm in ("guided", "alpha=0")
    }
    print(
        f"\nmargin (α = 0's distance − guided's; > 0: guided closer): "
        f"{', '.join(f'{margin:+.2f}' for margin in per_seed)}; mean {statistics.mean(per_seed):+.2f} "
        f"± {spread:.2f} (sd over {len(per_seed)} seeds)"
    )
    print(
        f"best candidate in the hidden network's family: guided {family['guided']}/{len(per_seed)}, "
        f"α = 0 {family['alpha=0']}/{len(per_seed)}; {time.perf_counter() - started:.0f} s in all"
    )
    return rows


if __name__ == "__main__":
    main()
