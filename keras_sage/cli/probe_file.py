"""The probe file of the command line: an `.npz` of the probe images and, optionally, their labels.

`keras-sage probe CONFIG.toml -o probe.npz` writes one (`save_probe`); `keras-sage teacher register
MODEL --probe probe.npz` reads it (`load_probe`). Arrays only: it is read with `allow_pickle=False`.

Example:

```python
save_probe("probe.npz", images, labels)
images, labels = load_probe("probe.npz")
```
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from keras_sage._atomic import write_atomically
from keras_sage._errors import first_line

__all__ = ["PROBE_IMAGES_KEY", "PROBE_LABELS_KEY", "load_probe", "save_probe"]

PROBE_IMAGES_KEY = "images"
PROBE_LABELS_KEY = "labels"


def load_probe(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads a probe set from an `.npz` file: array `images`, and optional array `labels`.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not an `.npz` file of numeric arrays, has no `images` array, its images are not
            `(n, H, W, C)` or its labels not one per image; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"probe file not found: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz file ({first_line(error)})") from None
    if not hasattr(archive, "files"):
        raise ValueError(f"{path}: a probe file must be an .npz archive of arrays, not a single array")
    with archive:
        if PROBE_IMAGES_KEY not in archive.files:
            raise ValueError(
                f"{path}: no array '{PROBE_IMAGES_KEY}' (it has: {', '.join(archive.files) or 'nothing'})"
            )
        try:
            images = archive[PROBE_IMAGES_KEY]
            labels = archive[PROBE_LABELS_KEY] if PROBE_LABELS_KEY in archive.files else None
        except ValueError as error:
            reason = first_line(error)
            raise ValueError(f"{path}: {reason} (a probe file holds numeric arrays only)") from None
    if images.ndim != 4:
        raise ValueError(
            f"{path}: '{PROBE_IMAGES_KEY}' must have shape (n, H, W, C), got {images.shape} (grey images "
            "need their channel axis: images[..., None])"
        )
    if labels is not None and labels.shape != (len(images),):
        raise ValueError(
            f"{path}: '{PROBE_LABELS_KEY}' must have shape ({len(images)},), one label per image, got "
            f"{labels.shape}"
        )
    return images, labels


def save_probe(path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray | None) -> None:
    """Writes a probe set to an `.npz` file (array `images`, and `labels` when given), atomically."""
    arrays = {PROBE_IMAGES_KEY: images}
    if labels is not None:
        arrays[PROBE_LABELS_KEY] = labels
    write_atomically(path, lambda file: np.savez(file, allow_pickle=False, **arrays))
