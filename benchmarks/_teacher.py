"""The benchmarks' small trained teacher: a ResNet-8 fitted on a data set's training split, registered.

Shared by `bench_bootstrap.py` and `bench_hyperband.py`, which import it as a sibling module (each is run
as a script from `benchmarks/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from keras_sage.hypermodels import resnet_cifar
from keras_sage.teachers import TeacherStore, register_teacher

# The ResNet's endpoints registered as the teacher's layers.
TEACHER_LAYERS = ("L1", "L2", "L3")


def resnet8_teacher(data: Any, path: Path, epochs: int, batch_size: int = 32) -> tuple[Path, float | None]:
    """A ResNet-8 trained `epochs` epochs on `data`'s training split, registered on its probe images.

    The file at `path` is reused when it exists (it records the network's validation accuracy).

    Args:
        data: An `ImageSplits` (`x_train`, `y_train`, `x_val`, `y_val`, `x_probe`, `y_probe`).
        path: The teacher file.
        epochs: Training epochs (SGD 0.05, Nesterov momentum 0.9, seed 0).
        batch_size: Training batch size.

    Returns:
        The teacher file and the network's validation accuracy (`None` for an older file without it).
    """
    if not path.exists():
        keras.utils.set_random_seed(0)
        teacher = resnet_cifar(depth=8, num_classes=10, input_shape=data.x_train.shape[1:])
        teacher.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        teacher.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=0)
        accuracy = teacher.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)["accuracy"]
        register_teacher(
            teacher,
            data.x_probe,
            data.y_probe,
            layers=TEACHER_LAYERS,
            path=path,
            verbose=0,
            validation_accuracy=float(accuracy),
        )
    return path, TeacherStore.open(path).validation_accuracy
