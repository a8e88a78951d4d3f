"""Register a teacher with the `keras-sage` command line, offline, on scikit-learn's digits.

1. Trains a small Keras CNN on the digits (16×16, a few seconds on 2 CPU cores) and saves it as `.keras`
   in the output folder; a later run reuses it.
2. Saves a probe set (10 images of each digit, held out from training) as `probe.npz`.
3. Runs `keras-sage teacher register` on the saved model, then `keras-sage teacher show` on the teacher
   file it wrote.

Run: `python examples/register_teacher.py [--output demo-output/register-teacher]`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from keras_sage import cli
from keras_sage.datasets import ImageSplits, digits

IMAGE_SIZE = 16
PROBE_SIZE = 100
TEACHER_LAYERS = ("conv1", "conv2", "hidden")


def build_teacher(num_classes: int) -> keras.Model:
    """A small CNN: two convolution stages, a hidden dense layer, and the classifier."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name="digits_teacher")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def trained_teacher(path: Path, data: ImageSplits, epochs: int, seed: int) -> keras.Model:
    """The teacher saved at `path`, or a newly trained one saved there."""
    if path.exists():
        print(f"Using the teacher trained earlier: {path}")
        return keras.saving.load_model(path, safe_mode=True)
    print(f"Training the teacher CNN on {len(data.x_train)} digits for {epochs} epochs ...")
    keras.utils.set_random_seed(seed)
    model = build_teacher(data.num_classes)
    start = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    print(f"  trained in {time.perf_counter() - start:.1f} s")
    model.save(path)
    return model


def run_command(arguments: list[str]) -> None:
    """Runs `keras-sage ARGUMENTS` in this process, as a user would type it; exits if it fails."""
    print(f"\n$ keras-sage {shlex.join(arguments)}", flush=True)
    status = cli.main(arguments)
    if status != 0:
        sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=Path("demo-output/register-teacher"), help="working folder"
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the teacher")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)

    data = digits(image_size=IMAGE_SIZE, probe_size=PROBE_SIZE, seed=args.seed)
    model_path = args.output / f"teacher-cnn-epochs{args.epochs}-seed{args.seed}.keras"
    model = trained_teacher(model_path, data, args.epochs, args.seed)
    _, accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
    print(f"  validation accuracy: {accuracy:.3f}")

    probe_path = args.output / "probe.npz"
    np.savez(probe_path, images=data.x_probe, labels=data.y_probe)
    per_class = PROBE_SIZE // data.num_classes
    print(f"Probe set: {len(data.x_probe)} held-out digits ({per_class} of each) -> {probe_path}")

    teacher_path = args.output / "teacher.h5"
    register = ["teacher", "register", str(model_path), "--probe", str(probe_path)]
    run_command([*register, "--layers", ",".join(TEACHER_LAYERS), "-o", str(teacher_path), "--overwrite"])
    run_command(["teacher", "show", str(teacher_path)])


if __name__ == "__main__":
    main()
