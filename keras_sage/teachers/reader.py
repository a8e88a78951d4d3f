"""Reading a teacher file: its header and probe set, then its RDM records, every part checked.

`TeacherStore.open` drives it: `read_header`, the store built from the header's probe set,
`check_probe` against that store, then `read_records`. RDM values are read later, on first use, by
`load_values`. Files are only ever opened read-only; nothing in them is unpickled or executed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from keras_sage.rsa import METRICS, NoiseCeiling
from keras_sage.teachers.format import (
    CEILING_ATTRS,
    FORMAT,
    JSON_VERSION_ATTRS,
    LAYER_ATTRS,
    READABLE_FORMAT_VERSIONS,
    VERSION_ATTRS,
    VERSIONS_GROUP,
    Fail,
    StoredRDM,
    TeacherFileError,
    check_rdm_shape,
    checked_accuracy,
    reading,
    version_number,
)
from keras_sage.teachers.versions import StoredVersion, TeacherRecords


@dataclass(frozen=True)
class Header:
    """What a teacher file holds besides its RDMs, as read: the root attributes and the probe set."""

    format_version: int
    created: str | None
    probe_images: np.ndarray
    probe_labels: np.ndarray | None
    probe_source: str
    probe_fingerprint: Any


def read_header(path: Path, file: h5py.File) -> Header:
    """Checks the format, its version and the groups, and reads the probe set as stored.

    Raises:
        TeacherFileError: Not a teacher file, an unreadable format version, or a missing group.
    """
    fail = _failing(path)
    if file.attrs.get("format") != FORMAT:
        raise fail(f"not a keras-sage teacher file (attribute format is not {FORMAT!r})")
    version = file.attrs.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_FORMAT_VERSIONS)
        raise fail(f"format_version {version} is not supported; this release reads version(s) {readable}")
    for group in ("probe", "rdms"):
        if not isinstance(file.get(group), h5py.Group):
            raise fail(f"missing group /{group}")
    probe = file["probe"]
    if not isinstance(probe.get("images"), h5py.Dataset):
        raise fail("missing dataset /probe/images")
    return Header(
        format_version=int(version),
        created=str(file.attrs.get("created", "")) or None,
        probe_images=probe["images"][()],
        probe_labels=probe["labels"][()] if "labels" in probe else None,
        probe_source=str(probe.attrs.get("source", "")),
        probe_fingerprint=probe.attrs.get("fingerprint"),
    )


def check_probe(path: Path, header: Header, probe_images: np.ndarray, fingerprint: str) -> None:
    """Checks the probe set as a store holds it against the file's: same dtype, same fingerprint.

    Raises:
        TeacherFileError: The stored images have another dtype, or were modified.
    """
    fail = _failing(path)
    if probe_images.dtype != header.probe_images.dtype:
        raise fail(f"/probe/images has dtype {header.probe_images.dtype}; expected uint8 or float32")
    if header.probe_fingerprint != fingerprint:
        raise fail("the probe images or labels were modified (their fingerprint does not match)")


def read_records(
    path: Path, file: h5py.File, header: Header, probe_labels: np.ndarray | None, n_images: int
) -> TeacherRecords:
    """Every version's RDM records, checked against the probe set, without their values.

    Raises:
        TeacherFileError: An RDM or version that is malformed or does not fit the probe set.
    """
    fail = _failing(path)
    records = TeacherRecords()
    rdms = file["rdms"]
    records.root_layers.update(_read_layers(rdms, "/rdms", fail, probe_labels, n_images))
    if "validation_accuracy" in rdms.attrs:
        records.root_accuracy = _stored_accuracy(rdms.attrs["validation_accuracy"], "/rdms", fail)
    versions = file.get(VERSIONS_GROUP)
    if versions is not None:
        if header.format_version < 2 or not isinstance(versions, h5py.Group):
            raise fail(f"/{VERSIONS_GROUP} is not a group of a format_version 2 file")
        for key, group in versions.items():
            number = version_number(key, fail)
            records.versions[number] = _read_version(key, group, fail, probe_labels, n_images)
    return records


def load_values(path: Path, group: str, layers: Mapping[str, StoredRDM]) -> None:
    """Reads the values of `layers` (of the file's `group`) that are not in memory yet.

    Raises:
        TeacherFileError: An RDM is no longer in the file, or the file is damaged.
    """
    if all(layer.values is not None for layer in layers.values()):
        return
    with reading(path) as file:
        for name, layer in layers.items():
            if layer.values is None:
                if f"{group}/{name}" not in file:
                    raise TeacherFileError(f"{path}: /{group}/{name} disappeared from the file")
                layer.values = np.asarray(file[f"{group}/{name}"][()], dtype=np.float32)


def _failing(path: Path) -> Fail:
    def fail(problem: str) -> TeacherFileError:
        return TeacherFileError(f"{path}: {problem}")

    return fail


def _read_layers(
    group: Any, where: str, fail: Fail, probe_labels: np.ndarray | None, n_images: int
) -> dict[str, StoredRDM]:
    """The RDMs of one version's `rdms` group, checked, without their values."""
    layers = {}
    for name, dataset in group.items():
        if not isinstance(dataset, h5py.Dataset):
            raise fail(f"{where}/{name} is not a dataset")
        missing = [attr for attr in LAYER_ATTRS if attr not in dataset.attrs]
        if missing:
            raise fail(f"{where}/{name} lacks attribute(s) {', '.join(missing)}")
        info = {attr: _python(dataset.attrs[attr]) for attr in LAYER_ATTRS}
        if info["metric"] not in METRICS:
            raise fail(
                f"{where}/{name} has metric {info['metric']!r}; this release knows {', '.join(METRICS)}"
            )
        categories = dataset.attrs.get("categories")
        try:
            check_rdm_shape(name, info["n"], info["level"], categories, dataset.shape, probe_labels, n_images)
        except ValueError as error:
            raise fail(str(error)) from None
        ceiling = _ceiling_from_attrs(dataset.attrs, f"{where}/{name}", fail)
        layers[name] = StoredRDM(info, categories=categories, ceiling=ceiling)
    return layers


def _read_version(
    key: str, group: Any, fail: Fail, probe_labels: np.ndarray | None, n_images: int
) -> StoredVersion:
    """One `/versions/<k>` group, checked: its attributes (JSON parsed) and its RDMs."""
    where = f"/{VERSIONS_GROUP}/{key}"
    if not isinstance(group, h5py.Group) or not isinstance(group.get("rdms"), h5py.Group):
        raise fail(f"{where} is not a teacher version (a group with an rdms group)")
    missing = [attr for attr in VERSION_ATTRS if attr not in group.attrs]
    if missing:
        raise fail(f"{where} lacks attribute(s) {', '.join(missing)}")
    info = {attr: _python(group.attrs[attr]) for attr in VERSION_ATTRS}
    for attr in JSON_VERSION_ATTRS:
        try:
            info[attr] = json.loads(info[attr])
        except (TypeError, ValueError):
            raise fail(f"{where} attribute {attr} is not JSON") from None
        if not isinstance(info[attr], dict):
            raise fail(f"{where} attribute {attr} is not a JSON object")
    info["validation_accuracy"] = _stored_accuracy(info["validation_accuracy"], where, fail)
    try:
        info["parent_version"] = int(info["parent_version"])
    except (TypeError, ValueError):
        raise fail(
            f"{where} attribute parent_version is not an integer: {info['parent_version']!r}"
        ) from None
    info["trial_id"] = str(info["trial_id"])
    layers = _read_layers(group["rdms"], f"{where}/rdms", fail, probe_labels, n_images)
    if not layers:
        raise fail(f"{where} holds no RDMs")
    return StoredVersion(info, layers)


def _stored_accuracy(value: Any, where: str, fail: Fail) -> float:
    """A stored validation accuracy, checked; `fail` names the place of a bad one."""
    try:
        return checked_accuracy(_python(value))
    except ValueError:
        raise fail(f"{where} attribute validation_accuracy is not a number in [0, 1]: {value!r}") from None


def _ceiling_from_attrs(attrs: Any, where: str, fail: Fail) -> NoiseCeiling | None:
    """The `NoiseCeiling` in a dataset's attributes, `None` if it has none; `fail` names a partial one."""
    present = [attr for attr in CEILING_ATTRS if attr in attrs]
    if not present:
        return None
    if len(present) < len(CEILING_ATTRS):
        missing = [attr for attr in CEILING_ATTRS if attr not in attrs]
        raise fail(f"{where} has a noise ceiling without attribute(s) {', '.join(missing)}")
    fields = {field: _python(attrs[attr]) for attr, field in CEILING_ATTRS.items()}
    fields["split_reliabilities"] = np.asarray(attrs["split_reliabilities"], dtype=np.float64).reshape(-1)
    try:
        return NoiseCeiling(
            reliability=float(fields["reliability"]),
            reliability_std=float(fields["reliability_std"]),
            split_reliabilities=fields["split_reliabilities"],
            lower=float(fields["lower"]),
            upper=float(fields["upper"]),
            method=str(fields["method"]),
            n_repeats=int(fields["n_repeats"]),
        )
    except (TypeError, ValueError) as error:
        raise fail(f"{where} has an invalid noise ceiling ({error})") from None


def _python(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (str, int, float)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
