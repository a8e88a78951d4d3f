"""One config per search: the fingerprint a worker presents to its chief, and the chief's admission rule.

A chief and its workers must search the same thing: a worker whose config says α = 0 under a chief at
α = 1 would report scores of P alone into the chief's study. So every request a worker sends carries, as
gRPC metadata, its name, an id of its process, and a fingerprint of everything that decides a trial's
score (`search_fingerprint`): the training and validation data, the batch size, the hypermodel's class
and arguments, the teacher (its probe fingerprint, RDMs and version), every `ScoringConfig` setting, and
the premature budget. The chief admits a worker whose fingerprint equals its own; otherwise the request
is refused (`FAILED_PRECONDITION`) with one line naming the first differing key and both values, which
the chief prints and the worker raises as `ConfigMismatchError`, before the worker trains anything. A
second live process under a worker name already admitted is refused the same way; a worker that has been
silent for the worker timeout (killed) may be replaced by a new process of its name.

Example:

```python
fingerprint = search_fingerprint(tuner, (x, y), {"validation_data": (x_val, y_val), "batch_size": 32})
first_difference(fingerprint, {**fingerprint, "alpha": "0.0"})  # "alpha: ... '1.0' ... '0.0'"
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import keras_tuner
import numpy as np

__all__ = [
    "FINGERPRINT_KEY",
    "INSTANCE_KEY",
    "TUNER_ID_KEY",
    "Admission",
    "ConfigMismatchError",
    "first_difference",
    "search_fingerprint",
    "worker_metadata",
]

# gRPC metadata keys (lower case, as gRPC requires).
FINGERPRINT_KEY = "keras-sage-config"
TUNER_ID_KEY = "keras-sage-tuner-id"
INSTANCE_KEY = "keras-sage-instance"
# Values longer than this are replaced by their digest, to keep the metadata small.
_LONGEST_VALUE = 160


class ConfigMismatchError(keras_tuner.errors.FatalValueError):
    """The chief refused this worker (another config, or its name taken); the message is one line."""


def search_fingerprint(
    tuner: Any, fit_args: tuple[Any, ...], fit_kwargs: Mapping[str, Any]
) -> dict[str, str]:
    """Everything that decides a trial's score, as short strings by key, in a fixed order.

    Args:
        tuner: The `SageTuner`.
        fit_args: The training data given to `search` (e.g. `(x, y)`).
        fit_kwargs: `search`'s keyword arguments (`validation_data`, `batch_size`, ...; `verbose` and
            `callbacks` do not decide a score and are left out).

    Returns:
        Key → value, e.g. `{"data": "float32 (64, 8, 8, 1) sha256:…", ..., "alpha": "1.0", ...}`.
    """
    teacher = tuner.scorer.teacher
    config = tuner.scorer.config
    fingerprint = {
        "data": _describe(fit_args),
        "validation_data": _describe(fit_kwargs.get("validation_data")),
        "batch_size": _describe(fit_kwargs.get("batch_size")),
        "hypermodel": _describe_hypermodel(tuner.hypermodel),
        "teacher_probe": str(teacher.fingerprint),
        "teacher_rdms": _digest(
            json.dumps(
                [
                    [name, teacher.layer_info(name), _array_digest(teacher.rdm(name).values)]
                    for name in teacher.layer_names
                ],
                sort_keys=True,
                default=str,
            ).encode()
        ),
        "teacher_version": str(teacher.version),
    }
    for field in dataclasses.fields(config):
        fingerprint[field.name] = _describe(getattr(config, field.name))
    fingerprint["premature_epochs"] = str(tuner.premature_epochs)
    fingerprint["premature_steps"] = str(tuner.premature_steps)
    return fingerprint


def first_difference(chief: Mapping[str, str], worker: Mapping[str, str]) -> str | None:
    """The first key (in the chief's order) whose value differs, with both values; None if none does."""
    for key in [*chief, *(key for key in worker if key not in chief)]:
        if chief.get(key) != worker.get(key):
            return f"{key}: the chief's is {chief.get(key)!r}, the worker's {worker.get(key)!r}"
    return None


def worker_metadata(tuner_id: str, fingerprint: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The metadata a worker sends with each request: its name, its process, its fingerprint."""
    instance = f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_STARTED}"
    return (
        (TUNER_ID_KEY, tuner_id),
        (INSTANCE_KEY, instance),
        (FINGERPRINT_KEY, json.dumps(dict(fingerprint))),
    )


_PROCESS_STARTED = f"{time.time():.6f}"


class Admission:
    """The chief's rule: which worker processes it answers (see the module doc).

    Args:
        fingerprint: The chief's own `search_fingerprint`.
        worker_timeout: Seconds of silence after which a worker's name may be taken by a new process.
    """

    def __init__(self, fingerprint: Mapping[str, str], worker_timeout: float):
        self.fingerprint = dict(fingerprint)
        self.worker_timeout = worker_timeout
        self._admitted: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def refusal(self, metadata: Mapping[str, str]) -> str | None:
        """Why a request with this metadata is refused, in one line ("its config differs from the chief's
        at alpha: ..."); None if it is answered."""
        tuner_id = metadata.get(TUNER_ID_KEY)
        instance = metadata.get(INSTANCE_KEY)
        if tuner_id is None or instance is None or FINGERPRINT_KEY not in metadata:
            return (
                "it presents no keras-sage config (every worker must run SageTuner from the chief's config)"
            )
        now = time.monotonic()
        with self._lock:
            admitted = self._admitted.get(tuner_id)
            if admitted is not None and admitted[0] == instance:
                self._admitted[tuner_id] = (instance, now)
                return None
            if admitted is not None and now - admitted[1] < self.worker_timeout:
                return (
                    f"another live worker process ({admitted[0]}) has its name; give each worker its own "
                    "--tuner-id"
                )
            try:
                presented = json.loads(metadata[FINGERPRINT_KEY])
            except ValueError:
                presented = None
            if not isinstance(presented, dict):
                return "its config fingerprint is not readable"
            difference = first_difference(self.fingerprint, presented)
            if difference is not None:
                return f"its config differs from the chief's at {difference}"
            self._admitted[tuner_id] = (instance, now)
        return None


def _describe(value: Any) -> str:
    """A short description of a value that two equal values share: arrays by shape, dtype and digest."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape} sha256:{_array_digest(value)}"
    if isinstance(value, (tuple, list)):
        return _shorten("(" + ", ".join(_describe(item) for item in value) + ")")
    if isinstance(value, Mapping):
        return _shorten(
            "{" + ", ".join(f"{key!s}: {_describe(item)}" for key, item in sorted(value.items())) + "}"
        )
    if value is None or isinstance(value, (bool, int, float, str)):
        return _shorten(repr(value))
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"
    element_spec = getattr(value, "element_spec", None)
    if element_spec is not None:  # a tf.data.Dataset: its structure, not its (streamed) content
        return _shorten(f"{type(value).__name__} {element_spec}")
    return type(value).__name__


def _describe_hypermodel(hypermodel: Any) -> str:
    """The hypermodel's class (or build function) and its public arguments."""
    build = getattr(hypermodel, "build", None)
    kind = type(hypermodel)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if type(hypermodel).__name__ == "DefaultHyperModel" and build is not None:
        name = _describe(build)
    arguments = {
        key: value
        for key, value in getattr(hypermodel, "__dict__", {}).items()
        if not key.startswith("_") and not callable(value)
    }
    return _shorten(f"{name} {_describe(arguments)}")


def _array_digest(array: np.ndarray) -> str:
    return _digest(np.ascontiguousarray(array).tobytes())[:16]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shorten(text: str) -> str:
    if len(text) <= _LONGEST_VALUE:
        return text
    return f"{text[:60]}… sha256:{_digest(text.encode())[:16]}"
