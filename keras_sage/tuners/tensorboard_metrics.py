"""A trial's teacher-guided metrics in TensorBoard, beside Keras's training curves and KerasTuner's HParams.

When `search` is given a `keras.callbacks.TensorBoard(log_dir)`, KerasTuner points it at one folder per
trial and logs the trial's hyperparameters there (its HParams callback); Keras logs the training curves.
P, TG and each S_i are measured after training, so Keras never sees them: `log_trial_metrics` writes them
(with the score, params and FLOPs) as scalars to the trial's folder, subfolder `sage`, where TensorBoard's
HParams dashboard finds them as metrics of the trial.

```
tensorboard --logdir LOG_DIR   # HParams tab: one row per trial, P, TG and each S_i as metric columns
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import keras_tuner

from keras_sage.tuners import _compat

__all__ = ["SUBFOLDER", "log_trial_metrics"]

SUBFOLDER = "sage"


def log_trial_metrics(
    tuner: keras_tuner.Tuner,
    trial: keras_tuner.engine.trial.Trial,
    fit_kwargs: Mapping[str, Any],
    metrics: Mapping[str, float],
) -> None:
    """Writes a trial's metrics as TensorBoard scalars (step 0) for each TensorBoard callback of `search`.

    Args:
        tuner: The tuner running the trial.
        trial: The trial.
        fit_kwargs: What `search` was given besides the data (its `callbacks`).
        metrics: The trial's metrics by name (`score`, `premature_accuracy`, `teacher_guidance`, `S_<layer>`,
            ...).
    """
    log_dirs = [
        callback.log_dir
        for callback in fit_kwargs.get("callbacks") or []
        if callback.__class__.__name__ == "TensorBoard"
    ]
    if not log_dirs:
        return
    import tensorflow as tf

    for log_dir in log_dirs:
        folder = os.path.join(_compat.tensorboard_trial_dir(tuner, log_dir, trial.trial_id), SUBFOLDER)
        writer = tf.summary.create_file_writer(folder)
        with writer.as_default():
            for name, value in metrics.items():
                tf.summary.scalar(name, value, step=0)
        writer.close()
