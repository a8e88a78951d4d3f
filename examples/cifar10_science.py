"""Does the teacher help? The paper's §4.1 predictivity experiment on real CIFAR-10, with controls.

Stages, each resumable (re-running the same command continues where it stopped):

1. data: the CIFAR-10 JPEG folders (`../shared/data/cifar10-jpeg.tar.gz`) decoded once into a cached
   `.npz` at the experiment's image size; a stratified 45,000/5,000 training/validation split (seeded), the
   probe images drawn class-balanced from the validation split, the students' subsets from the rest.
2. teacher: a ResNet trained on the whole 45,000-image training split at the students' image size with the
   paper's augmentation (zero-pad by 1/8 of the side, random crop, random flip, per-image
   standardization); weights, validation accuracy and training time are cached beside the data.
3. pool: random 10-layer CNNs, each trained once to maturity and scored by P, TG, each S_i and the
   control teachers (an untrained copy of the teacher, the labels' RDM) at ¼, ½, 1 and 2 epochs and at
   initialisation (`keras_sage.analysis.build_pool`), appended to `benchmarks/pools/` as it goes.
4. report: `keras_sage.analysis.pool_report` (what `keras-sage report POOL.jsonl` writes).
5. search: TPE guided by P (α = 0) and by P + α·TG (α calibrated on the pool), each with every seed of
   the scale, at equal cost, best candidates reranked; one row per search appended beside the pool.

`--scale cpu` is what a 2-core machine affords (16×16 images, ResNet-20 teacher, students on a subset);
`--scale gpu` is the paper's setting. Run, for example:

    python examples/cifar10_science.py --scale cpu --stage teacher
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from PIL import Image
from sklearn.model_selection import train_test_split

from keras_sage._atomic import write_atomically
from keras_sage.analysis import (
    append_rows,
    build_pool,
    calibrate_alpha,
    describe_comparisons,
    format_table,
    labels_teacher,
    pool_report,
    read_pool,
    search_summary,
)
from keras_sage.contract import SCORE
from keras_sage.datasets import standardize
from keras_sage.hypermodels import CNNSearchSpace, resnet_cifar
from keras_sage.hypermodels.base import BATCH_NORM_MOMENTUM
from keras_sage.teachers import register_teacher
from keras_sage.tuners import TPEOracle
from keras_sage.tuners.sage_tuner import DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS, SageTuner

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "keras-sage" / "science"
DEFAULT_POOLS = Path(__file__).resolve().parents[1] / "benchmarks" / "pools"
TEACHER_LAYERS = ("L1", "L2", "L3")
# Budgets in epochs of the students' training split: at initialisation, ¼, ½, 1 and 2 epochs.
BUDGET_EPOCHS = (0, 0.25, 0.5, 1, 2)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR_SIDE = 32


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of one run of the experiment."""

    image_size: int
    teacher_depth: int
    teacher_epochs: int
    student_train: int
    student_validation: int
    probe_size: int
    architectures: int
    mature_epochs: int
    batch_size: int
    max_layers: int = 10
    # The search comparison: TPE at the shortest trained budget, α = 0 against the calibrated α.
    search_trials: int = 30
    search_seeds: tuple[int, ...] = (1, 2)
    rerank_top_k: int = 3
    # The students' batch-norm momentum (written into each pool's description).
    batch_norm_momentum: float = BATCH_NORM_MOMENTUM


SCALES = {
    # A minute's check that every stage runs (not a result).
    "smoke": Scale(
        image_size=16,
        teacher_depth=8,
        teacher_epochs=1,
        student_train=600,
        student_validation=200,
        probe_size=100,
        architectures=2,
        mature_epochs=2,
        batch_size=64,
        max_layers=4,
        search_trials=3,
        search_seeds=(1,),
        rerank_top_k=1,
    ),
    # A 2-core CPU in one session: 16×16 images; students on 4,000 training images, validated on 1,000,
    # mature after 10 epochs (the 10-layer space's largest candidates take ~10 min each at 6,000).
    "cpu": Scale(
        image_size=16,
        teacher_depth=20,
        teacher_epochs=30,
        student_train=4000,
        student_validation=1000,
        probe_size=500,
        architectures=40,
        mature_epochs=10,
        batch_size=64,
        # The committed 16 px pools and their searches were built with Keras's default, before every space
        # moved to `hypermodels.base.BATCH_NORM_MOMENTUM` (0.9); extending them keeps theirs.
        batch_norm_momentum=0.99,
    ),
    # The paper's setting on one GPU (CIFAR-10 here; CIFAR-100 goes through `keras_sage.cifar100`).
    "gpu": Scale(
        image_size=32,
        teacher_depth=56,
        teacher_epochs=160,
        student_train=45000,
        student_validation=5000,
        probe_size=5000,
        architectures=116,
        mature_epochs=60,
        batch_size=128,
    ),
}


def cifar10_arrays(archive: Path, cache: Path, image_size: int) -> dict[str, np.ndarray]:
    """CIFAR-10's 50,000 training images as uint8 (n, size, size, 3) with int64 labels, cached as .npz.

    The JPEG folders are extracted to a temporary folder once; images are shrunk by averaging blocks of
    pixels (32 / image_size must be an integer).
    """
    path = cache / f"cifar10-train-{image_size}px.npz"
    if path.exists():
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    if CIFAR_SIDE % image_size:
        raise ValueError(f"image_size must divide {CIFAR_SIDE}; got {image_size}")
    print(f"data: decoding {archive} (once; cached in {path})", flush=True)
    factor = CIFAR_SIDE // image_size
    images, labels = [], []
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(archive) as opened:
            opened.extractall(folder, filter="data")
        root = Path(folder) / "train"
        for label, name in enumerate(CIFAR10_CLASSES):
            for file in sorted((root / name).glob("*.jpg")):
                with Image.open(file) as image:
                    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
                pixels = pixels.reshape(image_size, factor, image_size, factor, 3).mean(axis=(1, 3))
                images.append(np.round(pixels).astype(np.uint8))
                labels.append(label)
    arrays = {"images": np.stack(images), "labels": np.asarray(labels, dtype=np.int64)}
    cache.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda file: np.savez(file, **arrays))
    return arrays


@dataclasses.dataclass(frozen=True)
class Splits:
    """uint8 images and int64 labels of every split the experiment uses."""

    x_train: np.ndarray  # the 45,000 training images (the teacher's)
    y_train: np.ndarray
    x_validation: np.ndarray  # the 5,000 held out, minus the probe images
    y_validation: np.ndarray
    x_probe: np.ndarray
    y_probe: np.ndarray
    x_student_train: np.ndarray
    y_student_train: np.ndarray
    x_student_validation: np.ndarray
    y_student_validation: np.ndarray


def split(arrays: dict[str, np.ndarray], scale: Scale, seed: int) -> Splits:
    """The paper's 45,000/5,000 split, stratified by class; probes and students' subsets from it."""
    images, labels = arrays["images"], arrays["labels"]
    train, held_out = train_test_split(
        np.arange(len(labels)), test_size=5000, stratify=labels, random_state=seed
    )
    validation, probe = train_test_split(
        held_out, test_size=scale.probe_size, stratify=labels[held_out], random_state=seed
    )
    student_train = _stratified_subset(train, labels, scale.student_train, seed)
    student_validation = _stratified_subset(validation, labels, scale.student_validation, seed)
    probe = np.sort(probe)
    return Splits(
        images[train],
        labels[train],
        images[validation],
        labels[validation],
        images[probe],
        labels[probe],
        images[student_train],
        labels[student_train],
        images[student_validation],
        labels[student_validation],
    )


def _stratified_subset(positions: np.ndarray, labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` of `positions`, stratified by class (all of them if there are not more)."""
    if size >= len(positions):
        return positions
    return train_test_split(positions, train_size=size, stratify=labels[positions], random_state=seed)[0]


def standardized(images: np.ndarray) -> np.ndarray:
    """Per-image standardization of uint8 images (the paper's evaluation preprocessing), float32."""
    return standardize(tf.constant(images, tf.float32)).numpy()


def augmented_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """The paper's CIFAR augmentation at any size: pad by 1/8 of the side, random crop, flip, standardize."""
    padding = images.shape[1] // 8

    def augment(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.cast(image, tf.float32)
        padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
        image = tf.image.random_flip_left_right(tf.image.random_crop(padded, tf.shape(image)))
        return standardize(image), label

    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def teacher_model(
    splits: Splits, scale: Scale, kept: Path, seed: int, backup: Path | None = None
) -> tuple[keras.Model, dict]:
    """The trained teacher and its record (validation accuracy, training time, weights fingerprint).

    Trained once; its weights and record are kept in `kept` (the pools folder, committed beside the pools
    they scored: the training is not bit-reproducible, since the augmentation's random ops run in a
    parallel map, so a pool can only be extended with the very teacher that started it). With `backup`, a
    folder, Keras's `BackupAndRestore` saves the training at every epoch's end there, and a killed
    training resumes from its last finished epoch.
    """
    stem = f"teacher-resnet{scale.teacher_depth}-{scale.image_size}px-e{scale.teacher_epochs}-seed{seed}"
    weights_path, record_path = kept / f"{stem}.weights.h5", kept / f"{stem}.json"
    input_shape = splits.x_train.shape[1:]
    keras.utils.set_random_seed(seed)
    model = resnet_cifar(depth=scale.teacher_depth, num_classes=10, input_shape=input_shape)
    if weights_path.exists() and record_path.exists():
        model.load_weights(weights_path)
        record = json.loads(record_path.read_text())
        if record.get("weights_fingerprint") != weights_fingerprint(model):
            raise ValueError(f"teacher weights {weights_path} do not match the fingerprint in {record_path}")
        return model, record
    train = augmented_batches(splits.x_train, splits.y_train, 128, seed)
    steps = scale.teacher_epochs * int(train.cardinality())
    model.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.CosineDecay(0.1, steps), momentum=0.9, nesterov=True
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    validation = (standardized(splits.x_validation), splits.y_validation)
    print(f"teacher: training ResNet-{scale.teacher_depth} for {scale.teacher_epochs} epochs", flush=True)
    # The backup outlives the training until the weights and their record are written (below): a kill in
    # between resumes from the last epoch instead of training again. The clock, after the backup, counts
    # the seconds of every piece of a resumed training.
    seconds_path = None if backup is None else backup / f"{stem}-seconds.json"
    clock = TrainingClock(seconds_path)
    callbacks: list[keras.callbacks.Callback] = [clock]
    if backup is not None:
        callbacks.insert(0, keras.callbacks.BackupAndRestore(str(backup / stem), delete_checkpoint=False))
    model.fit(train, epochs=scale.teacher_epochs, validation_data=validation, verbose=2, callbacks=callbacks)
    seconds = clock.seconds
    accuracy = model.evaluate(*validation, verbose=0, return_dict=True)["accuracy"]
    record = {
        "model": f"resnet{scale.teacher_depth}",
        "image_size": scale.image_size,
        "epochs": scale.teacher_epochs,
        "train_images": len(splits.y_train),
        "validation_images": len(splits.y_validation),
        "validation_accuracy": float(accuracy),
        "training_seconds": round(seconds, 1),
        # What retraining by this recipe would need to match (teachers before 2026-12-06 used 0.99).
        "batch_norm_momentum": BATCH_NORM_MOMENTUM,
        "machine": f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}",
        "weights_fingerprint": weights_fingerprint(model),
    }
    kept.mkdir(parents=True, exist_ok=True)
    # The weights alone (no optimizer state): half the file, which is committed beside the pools.
    inference_copy = resnet_cifar(depth=scale.teacher_depth, num_classes=10, input_shape=input_shape)
    inference_copy.set_weights(model.get_weights())
    inference_copy.save_weights(weights_path)
    write_atomically(record_path, lambda file: file.write(json.dumps(record, indent=2).encode()))
    if backup is not None and seconds_path is not None:
        # The count first: a count left without its backup would be added to a training from scratch.
        seconds_path.unlink(missing_ok=True)
        shutil.rmtree(backup / stem, ignore_errors=True)
    print(f"teacher: validation accuracy {accuracy:.4f} after {seconds:.0f} s", flush=True)
    return model, record


class TrainingClock(keras.callbacks.Callback):
    """The seconds a training took, over every piece of a training that `BackupAndRestore` resumed.

    With a `path`, each finished epoch's seconds are added to a JSON file there (written atomically), which
    the next piece reads back; place the clock after the `BackupAndRestore` callback, so that the epochs it
    counts are those the backup kept (a kill between the two writes loses one epoch's seconds, never
    counts one twice). A count of more epochs than the piece starts from (a count left by an earlier
    training) is not added. Without a path it times one `fit`.

    Args:
        path: The file that keeps the count between pieces, or None.

    Example:

    ```python
    clock = TrainingClock(Path("backups/teacher-seconds.json"))
    model.fit(data, epochs=10, callbacks=[keras.callbacks.BackupAndRestore("backups/teacher"), clock])
    clock.seconds  # every piece's epochs
    ```
    """

    def __init__(self, path: Path | None):
        super().__init__()
        self.path = path
        self.seconds = 0.0
        self._counted_epochs = 0
        self._epoch_started = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            count = json.loads(self.path.read_text())
            self.seconds, self._counted_epochs = float(count["seconds"]), int(count["epochs"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{self.path} is not a training clock's count ({{'epochs': ..., 'seconds': ...}}): {error}"
            ) from None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch < self._counted_epochs:
            self.seconds, self._counted_epochs = 0.0, 0
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds += time.perf_counter() - self._epoch_started
        self._counted_epochs = epoch + 1
        if self.path is not None:
            text = json.dumps({"epochs": self._counted_epochs, "seconds": self.seconds})
            write_atomically(self.path, lambda file: file.write(text.encode()))


def weights_fingerprint(model: keras.Model) -> str:
    """The first 16 hex digits of the SHA-256 of the model's weights (float32 bytes, in order)."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def teacher_files(
    teacher: keras.Model, fingerprint: str, splits: Splits, scale: Scale, cache: Path, seed: int
) -> tuple[Path, dict[str, str]]:
    """The teacher file and the control teachers' files (`TG_untrained`, `TG_labels`), registered once.

    Every file holds the same probe images, standardized as the students see them; the teacher's is named
    by its weights' fingerprint.
    """
    probe = standardized(splits.x_probe)
    stem = f"{scale.image_size}px-probe{scale.probe_size}-seed{seed}"
    teacher_path = cache / f"teacher{fingerprint[:8]}-{stem}.h5"
    untrained_path = cache / f"untrained-{stem}.h5"
    labels_path = cache / f"labels-{stem}.h5"
    if not teacher_path.exists():
        register_teacher(teacher, probe, splits.y_probe, layers=TEACHER_LAYERS, path=teacher_path, verbose=0)
    if not untrained_path.exists():
        keras.utils.set_random_seed(seed + 1)
        untrained = resnet_cifar(depth=scale.teacher_depth, num_classes=10, input_shape=probe.shape[1:])
        register_teacher(
            untrained, probe, splits.y_probe, layers=TEACHER_LAYERS, path=untrained_path, verbose=0
        )
    if not labels_path.exists():
        labels_teacher(labels_path, probe, splits.y_probe)
    return teacher_path, {"TG_untrained": str(untrained_path), "TG_labels": str(labels_path)}


def pool(splits: Splits, scale: Scale, teacher_path: Path, controls: dict, path: Path, seed: int) -> list:
    """The pool of random 10-layer CNNs: trained once to maturity, scored at every budget (resumable)."""
    steps_per_epoch = -(-len(splits.y_student_train) // scale.batch_size)
    budgets = [round(epochs * steps_per_epoch) for epochs in BUDGET_EPOCHS]
    space = CNNSearchSpace(
        max_layers=scale.max_layers,
        num_classes=10,
        input_shape=splits.x_student_train.shape[1:],
        batch_norm_momentum=scale.batch_norm_momentum,
    )
    data = (
        (standardized(splits.x_student_train), splits.y_student_train),
        (standardized(splits.x_student_validation), splits.y_student_validation),
    )
    return build_pool(
        space,
        teacher_path,
        data,
        n=scale.architectures,
        budgets=budgets,
        mature_epochs=scale.mature_epochs,
        controls=controls,
        path=path,
        batch_size=scale.batch_size,
        seed=seed,
    )


def run_searches(
    splits: Splits, scale: Scale, teacher_path: Path, pool_rows: list, path: Path, cache: Path, seed: int
) -> list[dict]:
    """TPE searches guided by P (α = 0) and by P + α·TG (α calibrated on the pool), at equal cost.

    Every search runs `search_trials` trials of the shortest trained budget and reranks its best
    `rerank_top_k` by training them for the pool's mature epochs. One summary row per (α, seed) is
    appended to `path` as it finishes, so a stopped comparison resumes with the arms not yet run.
    """
    budget = sorted({row["budget"] for row in pool_rows if row["budget"] > 0})[0]
    calibrated = calibrate_alpha(pool_rows, budget).alpha
    alphas = (0.0, calibrated if calibrated > 0 else 1.0)
    done = {(row["alpha"], row["seed"]) for row in read_pool(path)} if path.exists() else set()
    train = (standardized(splits.x_student_train), splits.y_student_train)
    validation = (standardized(splits.x_student_validation), splits.y_student_validation)
    probe = (standardized(splits.x_probe), splits.y_probe)
    for search_seed in scale.search_seeds:
        for alpha in alphas:
            if (alpha, search_seed) in done:
                continue
            tuner = SageTuner(
                CNNSearchSpace(
                    max_layers=scale.max_layers,
                    num_classes=10,
                    input_shape=probe[0].shape[1:],
                    batch_norm_momentum=scale.batch_norm_momentum,
                ),
                teacher=teacher_path,
                alpha=alpha,
                premature_steps=budget,
                oracle=TPEOracle(
                    objective=keras_tuner.Objective(SCORE, "max"),
                    max_trials=scale.search_trials,
                    n_startup_trials=max(1, scale.search_trials // 3),
                    seed=search_seed,
                    max_consecutive_failed_trials=DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS,
                ),
                seed=search_seed,
                probe=probe,
                directory=cache / "searches",
                project_name=f"seed{seed}-alpha{alpha:g}-search{search_seed}",
                overwrite=False,
            )
            tuner.search(*train, validation_data=validation, batch_size=scale.batch_size, verbose=0)
            reranked = tuner.rerank(
                scale.rerank_top_k,
                scale.mature_epochs,
                *train,
                validation_data=validation,
                batch_size=scale.batch_size,
            )
            row = {**search_summary(f"α = {alpha:g}", tuner, reranked), "seed": search_seed, "budget": budget}
            append_rows(path, [row])
            print(format_table([row]), flush=True)
    return read_pool(path)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument(
        "--stage",
        choices=("teacher", "pool", "report", "search", "all"),
        default="all",
        help="stop after this stage (all: teacher, pool, report, then the search comparison)",
    )
    parser.add_argument("--pools", type=Path, default=DEFAULT_POOLS, help="where pool files are written")
    parser.add_argument("--data", type=Path, default=DEFAULT_ARCHIVE, help="cifar10-jpeg.tar.gz")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="decoded data, teacher weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--search-seeds",
        type=int,
        nargs="+",
        help="the search comparison's seeds (default: the scale's); seeds already run are not rerun",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    scale = SCALES[arguments.scale]
    if arguments.search_seeds:
        scale = dataclasses.replace(scale, search_seeds=tuple(arguments.search_seeds))
    arguments.cache.mkdir(parents=True, exist_ok=True)
    splits = split(cifar10_arrays(arguments.data, arguments.cache, scale.image_size), scale, arguments.seed)
    teacher, record = teacher_model(splits, scale, arguments.pools, arguments.seed)
    print(json.dumps(record, indent=2))
    if arguments.stage == "teacher":
        return
    teacher_path, controls = teacher_files(
        teacher, record["weights_fingerprint"], splits, scale, arguments.cache, arguments.seed
    )
    arguments.pools.mkdir(parents=True, exist_ok=True)
    # A pool is named by its teacher: rows scored by another teacher never enter it.
    name = (
        f"cifar10-{scale.image_size}px-{arguments.scale}-seed{arguments.seed}"
        f"-teacher{record['weights_fingerprint'][:8]}"
    )
    description = {
        "scale": dataclasses.asdict(scale),
        "budget_epochs": BUDGET_EPOCHS,
        "teacher": record,
        "data": "CIFAR-10 JPEGs (shared/data/cifar10-jpeg.tar.gz), 45,000/5,000 stratified split; students "
        f"train on {len(splits.y_student_train)} of the 45,000 and are validated on "
        f"{len(splits.y_student_validation)} of the 5,000; {len(splits.y_probe)} probe images from the "
        "5,000, disjoint from the students' validation images; per-image standardization, no augmentation "
        "for students",
    }
    description_path = arguments.pools / f"{name}.json"
    write_atomically(description_path, lambda file: file.write(json.dumps(description, indent=2).encode()))
    pool_path = arguments.pools / f"{name}.jsonl"
    if arguments.stage in ("report", "search") and pool_path.exists():
        rows = read_pool(pool_path)
    else:
        rows = pool(splits, scale, teacher_path, controls, pool_path, arguments.seed)
    print(f"pool: {len(rows)} rows in {pool_path}")
    if arguments.stage == "pool":
        return
    title = f"CIFAR-10 pool ({arguments.scale} scale, {scale.image_size}×{scale.image_size})"
    report = pool_report(rows, arguments.pools / f"{name}-report", title=title, seed=arguments.seed)
    print(report)
    if arguments.stage == "report":
        return
    searches = run_searches(
        splits,
        scale,
        teacher_path,
        rows,
        arguments.pools / f"{name}-searches.jsonl",
        arguments.cache,
        arguments.seed,
    )
    print(format_table(searches))
    print("\n".join(describe_comparisons(searches)) or "search comparison: not both arms run yet")


if __name__ == "__main__":
    main()
