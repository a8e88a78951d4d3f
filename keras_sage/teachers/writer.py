"""Writing a teacher file: RDMs turned into records checked against the probe set, and records into HDF5.

`TeacherStore` writes the whole file each time, through `keras_sage._atomic.write_atomically`, with
`write_teacher_file` as what fills the temporary file; the layout is `keras_sage.teachers.format`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from keras_sage._version import __version__
from keras_sage.rsa import RDM, NoiseCeiling
from keras_sage.teachers.format import (
    CEILING_ATTRS,
    FORMAT,
    FORMAT_VERSION,
    JSON_VERSION_ATTRS,
    VERSIONS_GROUP,
    StoredRDM,
    check_rdm_name,
    check_rdm_shape,
)
from keras_sage.teachers.versions import TeacherRecords


def stored_rdms(
    rdms: Mapping[str, RDM],
    kind: str,
    source: str,
    layers: Mapping[str, str],
    ceilings: Mapping[str, NoiseCeiling],
    probe_labels: np.ndarray | None,
    n_images: int,
) -> dict[str, StoredRDM]:
    """RDMs to store, each checked against the probe set, with their attributes.

    Args:
        rdms: The RDMs by name.
        kind: `"model-layer"` or `"neural-region"`.
        source: Where they came from (free text).
        layers: The model layer or brain region of some names; a name missing here is its own.
        ceilings: The noise ceiling of some names.
        probe_labels: The probe set's labels, or `None`.
        n_images: The number of probe images.

    Returns:
        The records, by name, in the order of `rdms`, with their values as `float32`.

    Raises:
        ValueError: A name HDF5 cannot hold, or an RDM that does not fit the probe set.
    """
    records = {}
    for name, rdm in rdms.items():
        check_rdm_name(name)
        values = np.asarray(rdm.values, dtype=np.float32)
        categories = None if rdm.categories is None else np.asarray(rdm.categories)
        check_rdm_shape(name, rdm.n, rdm.level, categories, values.shape, probe_labels, n_images)
        info = {
            "kind": kind,
            "source": source,
            "layer": layers.get(name, name),
            "metric": rdm.metric,
            "level": rdm.level,
            "n": int(rdm.n),
            "n_features": int(rdm.n_features),
            "n_features_used": int(rdm.n_features_used),
            "seed": int(rdm.seed),
        }
        records[name] = StoredRDM(info, values=values, categories=categories, ceiling=ceilings.get(name))
    return records


def write_teacher_file(
    target: Any,
    *,
    created: str,
    probe_images: np.ndarray,
    probe_labels: np.ndarray | None,
    probe_source: str,
    fingerprint: str,
    records: TeacherRecords,
) -> None:
    """Writes a whole teacher file into `target` (a path or a binary file); every RDM's values are in memory.

    A file with no version after version 0 is written as format version 1, one with versions as
    `FORMAT_VERSION`.
    """
    with h5py.File(target, "w") as file:
        file.attrs["format"] = FORMAT
        file.attrs["format_version"] = FORMAT_VERSION if records.versions else 1
        file.attrs["created"] = created
        file.attrs["keras_sage_version"] = __version__
        probe = file.create_group("probe")
        probe.create_dataset("images", data=probe_images, compression="gzip")
        if probe_labels is not None:
            probe.create_dataset("labels", data=probe_labels)
        probe.attrs["fingerprint"] = fingerprint
        probe.attrs["source"] = probe_source
        rdms = _write_layers(file.create_group("rdms", track_order=True), records.root_layers)
        if records.root_accuracy is not None:
            rdms.attrs["validation_accuracy"] = records.root_accuracy
        if records.versions:
            versions = file.create_group(VERSIONS_GROUP)
            for number, stored in sorted(records.versions.items()):
                group = versions.create_group(str(number))
                for attr, value in stored.info.items():
                    group.attrs[attr] = json.dumps(value) if attr in JSON_VERSION_ATTRS else value
                _write_layers(group.create_group("rdms", track_order=True), stored.layers)


def _write_layers(group: Any, layers: Mapping[str, StoredRDM]) -> Any:
    """Writes RDMs, with their attributes, into an HDF5 group; returns the group."""
    for name, layer in layers.items():
        dataset = group.create_dataset(name, data=layer.values)
        for attr, value in layer.info.items():
            dataset.attrs[attr] = value
        if layer.categories is not None:
            dataset.attrs["categories"] = layer.categories
        if layer.ceiling is not None:
            for attr, field in CEILING_ATTRS.items():
                dataset.attrs[attr] = getattr(layer.ceiling, field)
    return group
