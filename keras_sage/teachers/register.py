"""Registering a teacher: its RDMs on a probe set, from a saved Keras model or from neural recordings.

`register_teacher` runs the probe images through chosen layers of a trained Keras model;
`register_recordings` takes measured responses (e.g. the paper's V4, posterior-IT and anterior-IT sites,
supplement "Neural Measurements from Macaque Monkeys"). Both store one RDM per layer or region in a
teacher file (`TeacherStore`), adding to the file if it already holds the same probe set.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from keras_sage._atomic import check_writable_directory
from keras_sage._errors import first_line
from keras_sage._validation import check_choice, check_fraction, check_positive_int
from keras_sage.features import default_endpoints, layer_feature_counts, layer_features, single_output
from keras_sage.rsa import (
    COMPARE_METHODS,
    DEFAULT_MAX_FEATURES,
    DEFAULT_SPLITS,
    LEVELS,
    METRICS,
    RDM,
    NoiseCeiling,
    NoiseCeilingError,
    NoiseCeilingWarning,
    noise_ceiling,
    rdm,
)
from keras_sage.teachers.store import (
    TeacherStore,
    check_rdm_name,
    probe_fingerprint,
    probe_images_as_stored,
    probe_labels_as_stored,
)

DEFAULT_BATCH_SIZE = 64
# A region whose noise ceiling (√ split-half reliability) is below this is warned about at registration:
# even a perfect model would reach a similarity below it, and candidates' similarities would differ mostly
# by noise.
DEFAULT_MIN_CEILING = 0.3


def register_teacher(
    model_or_path: Any,
    probe_images: np.ndarray,
    probe_labels: np.ndarray | None = None,
    layers: Sequence[str] | None = None,
    path: str | os.PathLike[str] = "teacher.h5",
    metric: str = "correlation",
    level: str = "image",
    max_features: int | None = DEFAULT_MAX_FEATURES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    overwrite: bool = False,
    verbose: int = 1,
    allow_constant: bool = False,
    validation_accuracy: float | None = None,
) -> TeacherStore:
    """Stores the RDMs of a trained Keras model's layers on a probe set in a teacher file.

    The probe images are fed to the model as stored, cast to float32 (put preprocessing such as
    `Rescaling` inside the model), in batches, with a progress bar. From each layer's output
    (flattened) a fixed random subsample of `max_features` features is kept
    (`keras_sage.rsa.feature_subsample_indices` with `seed`), and one RDM per layer is stored.

    Which layers, when `layers` is not given: `keras_sage.features.default_endpoints`, the rule that
    finds a candidate's endpoints too: the model's representation endpoints if its layers follow the
    naming convention (`layer_<n>`, `cell_<n>`, `L<n>`), otherwise the end of each stage.

    If `path` already exists it must hold the same probe set; the new RDMs are added to it and every
    other stored RDM is kept. Everything that can be checked is checked before the forward pass (the
    arguments, the layer names, that the directory can be written); nothing is written unless every RDM
    was computed. A layer whose representation is the same for every probe image (e.g. all zeros), or
    whose RDM is constant, cannot guide a search and is an error unless `allow_constant`.

    Args:
        model_or_path: A `keras.Model`, or the path of a `.keras` file (loaded with `safe_mode=True`).
        probe_images: `uint8` or floating-point images, shape `(n, H, W, C)`.
        probe_labels: Integer labels, shape `(n,)`; required for `level="category"`.
        layers: Names of top-level layers of the model (or one name); see above for the default.
        path: The teacher file to write or add to.
        metric: The RDM distance (see `keras_sage.rsa.METRICS`), e.g. `"correlation"` (1 − Pearson r, the
            paper's Eq. 1).
        level: `"image"` (one row per probe image) or `"category"` (one row per label, averaged).
        max_features: Features kept per layer; `None` keeps all.
        batch_size: Probe images per forward pass.
        seed: Seed of the feature subsample.
        overwrite: Whether to replace RDMs of the same names already in the file.
        verbose: 1 shows a progress bar, 0 is silent.
        allow_constant: Store constant representations (with a warning) instead of raising.
        validation_accuracy: The model's validation accuracy, recorded in the file (version 0's
            `validation_accuracy`); teacher bootstrapping (`keras_sage.tuners.Bootstrap`) takes it as
            the accuracy a student must beat.

    Returns:
        The teacher file, writable.

    Example:

    ```python
    teacher = keras_sage.register_teacher(
        "resnet.keras", probe_images, probe_labels, layers=["L1", "L2", "L3"], path="teacher.h5"
    )
    teacher.layer_names  # ["L1", "L2", "L3"]
    ```
    """
    images = probe_images_as_stored(probe_images)
    labels = probe_labels_as_stored(probe_labels, images.shape[0])
    _check_choices(metric, level, labels)
    check_positive_int("batch_size", batch_size)
    model, source = _load_model(model_or_path)
    if isinstance(layers, str):
        layers = [layers]
    layer_names = list(layers) if layers is not None else default_endpoints(model)
    _check_layer_names(model, layer_names)
    _check_input_shape(model, source, images)
    if validation_accuracy is not None:
        check_fraction("validation_accuracy", validation_accuracy)
    existing = _existing_store(path, images, labels, layer_names, overwrite)

    rdms = model_layer_rdms(
        model,
        images,
        labels,
        layer_names,
        metric=metric,
        level=level,
        max_features=max_features,
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
        allow_constant=allow_constant,
    )
    store = existing or TeacherStore(path, images, labels, writable=True)
    store.add_rdms(
        rdms, kind="model-layer", source=source, overwrite=overwrite, validation_accuracy=validation_accuracy
    )
    return store


def _check_input_shape(model: Any, source: str, images: np.ndarray) -> None:
    """Refuses probe images whose shape is not the model's input shape (a dimension of None: any size).

    Raises:
        ValueError: The shapes differ, naming the model and both shapes.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        return
    expected = tuple(inputs[0].shape[1:])
    found = tuple(images.shape[1:])
    if len(expected) != len(found) or any(
        size is not None and size != actual for size, actual in zip(expected, found, strict=True)
    ):
        shown = tuple("any" if size is None else size for size in expected)
        raise ValueError(
            f"the probe images have shape {found}, but the model {source} takes inputs of shape {shown}; "
            "register the teacher on probe images of its input size"
        )


def model_layer_rdms(
    model: Any,
    probe_images: np.ndarray,
    probe_labels: np.ndarray | None,
    layers: Sequence[str],
    metric: str = "correlation",
    level: str = "image",
    max_features: int | None = DEFAULT_MAX_FEATURES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    verbose: int = 0,
    allow_constant: bool = False,
    preprocessing: Callable[[np.ndarray], Any] | None = None,
) -> dict[str, RDM]:
    """The RDMs of a Keras model's layers on probe images, as `register_teacher` stores them.

    Each layer's output is flattened and subsampled to `max_features` features (with `seed`) before its
    RDM; the RDM records the layer's full width and the seed.

    Args:
        model: A built Keras model.
        probe_images: The images as a teacher file stores them (`probe_images_as_stored`).
        probe_labels: Their labels, or `None`; required for `level="category"`.
        layers: Names of the model's layers.
        metric: The RDM distance (see `keras_sage.rsa.METRICS`).
        level: `"image"` or `"category"`.
        max_features: Features kept per layer; `None` keeps all.
        batch_size: Probe images per forward pass.
        seed: Seed of the feature subsample.
        verbose: 1 shows a progress bar.
        allow_constant: Return constant RDMs instead of raising.
        preprocessing: Optional callable applied to each batch of probe images before the model sees it.

    Returns:
        The RDMs by layer name, in the order of `layers`.

    Raises:
        ValueError: A layer's representation or RDM is constant (unless `allow_constant`), or its RDM is
            not finite; the message names the layer.
    """
    feature_counts = layer_feature_counts(model, list(layers))
    features = layer_features(
        model,
        list(layers),
        probe_images,
        max_features=max_features,
        seed=seed,
        batch_size=batch_size,
        preprocessing=preprocessing,
        verbose=verbose,
    )
    rdms = {}
    for name, features_kept, n_features in zip(layers, features, feature_counts, strict=True):
        what = f"layer {name!r} of model {model.name!r}"
        layer_rdm = _checked_rdm(
            what,
            features_kept,
            allow_constant,
            metric=metric,
            labels=probe_labels,
            level=level,
            seed=seed,
            name=name,
        )
        # The features were subsampled before the RDM; record the layer's full width and the seed used.
        rdms[name] = dataclasses.replace(layer_rdm, n_features=n_features, seed=seed)
    return rdms


def register_recordings(
    responses: Mapping[str, Any] | str | os.PathLike[str],
    probe_images: np.ndarray,
    probe_labels: np.ndarray | None = None,
    path: str | os.PathLike[str] = "teacher.h5",
    metric: str = "correlation",
    level: str = "image",
    max_features: int | None = None,
    seed: int = 0,
    source: str | None = None,
    overwrite: bool = False,
    ceiling_method: str = "pearson",
    n_splits: int = DEFAULT_SPLITS,
    min_ceiling: float | None = DEFAULT_MIN_CEILING,
    allow_constant: bool = False,
) -> TeacherStore:
    """Stores the RDMs of measured responses (one per brain region) on a probe set in a teacher file.

    Each region's responses are an array of shape `(n_images, n_sites)`, or
    `(n_images, n_sites, n_repeats)` whose repeats are averaged. The average ignores NaN, so repeats that
    were not recorded can be NaN; a site with no recorded repeat for some image is an error.

    With repeats, each region's noise ceiling is stored with its RDM (`keras_sage.rsa.noise_ceiling`:
    the Spearman–Brown corrected split-half reliability over `n_splits` random splits of the repeats,
    with its spread, and rsatoolbox's lower and upper noise ceiling), computed with `ceiling_method`, the
    comparison the search will score with; `TeacherStore.noise_ceilings()` reads them back and
    `keras_sage.rsa.normalised_similarities` divides similarities by them. A `NoiseCeilingWarning` names
    each region whose ceiling is below `min_ceiling`, and each region whose ceiling cannot be computed
    (no repeats, or a single one).

    If `path` already exists it must hold the same probe set; the new RDMs are added to it and every
    other stored RDM is kept.

    Args:
        responses: `{region: array}`, or the path of an `.npz` file (one array per region) or of an HDF5
            file (one top-level dataset per region).
        probe_images: The images the responses were recorded to, in the same order, `uint8` or
            floating point, shape `(n, H, W, C)`.
        probe_labels: Integer labels, shape `(n,)`; required for `level="category"`.
        path: The teacher file to write or add to.
        metric: The RDM distance (see `keras_sage.rsa.METRICS`).
        level: `"image"` or `"category"`.
        max_features: Sites kept per region; `None` keeps all.
        seed: Seed of the site subsample.
        source: Where the recordings came from; defaults to their file's path.
        overwrite: Whether to replace RDMs of the same names already in the file.
        ceiling_method: The comparison method of the noise ceilings (see `keras_sage.rsa.COMPARE_METHODS`).
        n_splits: Random splits of the repeats into halves for the split-half reliability.
        min_ceiling: Warn about regions whose ceiling (√ reliability) is below this; `None` never warns.
        allow_constant: Store constant responses (with a warning) instead of raising.

    Returns:
        The teacher file, writable.

    Example:

    ```python
    teacher = keras_sage.register_recordings(
        {"V4": v4_responses, "IT": it_responses}, probe_images, probe_labels, path="monkey.h5"
    )
    ```
    """
    images = probe_images_as_stored(probe_images)
    labels = probe_labels_as_stored(probe_labels, images.shape[0])
    _check_choices(metric, level, labels)
    check_choice("ceiling_method", ceiling_method, COMPARE_METHODS)
    check_positive_int("n_splits", n_splits)
    if isinstance(responses, Mapping):
        regions = dict(responses)
        source = source if source is not None else ""
    else:
        regions = load_responses(responses)
        source = source if source is not None else str(responses)
    if not regions:
        raise ValueError(f"no regions in the responses{f' of {source}' if source else ''}")
    for name in regions:
        check_rdm_name(name, "region name")
    averaged = {name: average_repeats(name, array, images.shape[0]) for name, array in regions.items()}
    existing = _existing_store(path, images, labels, list(averaged), overwrite)

    rdms = {
        name: _checked_rdm(
            f"region {name!r}",
            array,
            allow_constant,
            metric=metric,
            labels=labels,
            level=level,
            max_features=max_features,
            seed=seed,
            name=name,
        )
        for name, array in averaged.items()
    }
    ceilings = {}
    for name, array in regions.items():
        ceiling = _region_ceiling(
            name, array, metric, ceiling_method, labels, level, max_features, seed, n_splits, min_ceiling
        )
        if ceiling is not None:
            ceilings[name] = ceiling
    store = existing or TeacherStore(path, images, labels, writable=True)
    store.add_rdms(rdms, kind="neural-region", source=source, overwrite=overwrite, ceilings=ceilings)
    return store


def _region_ceiling(
    name: str,
    responses: Any,
    metric: str,
    method: str,
    labels: np.ndarray | None,
    level: str,
    max_features: int | None,
    seed: int,
    n_splits: int,
    min_ceiling: float | None,
) -> NoiseCeiling | None:
    """A region's noise ceiling, warning when it is below `min_ceiling` or cannot be computed."""
    array = np.asarray(responses)
    if array.ndim != 3 or array.shape[2] < 2:
        repeats = "no repeats axis" if array.ndim != 3 else "a single repeat"
        warnings.warn(
            f"region {name!r}: the responses have {repeats}, so the region's noise ceiling cannot be "
            "computed; pass responses of shape (n_images, n_sites, n_repeats) with 2 or more repeats",
            NoiseCeilingWarning,
            stacklevel=3,
        )
        return None
    try:
        ceiling = noise_ceiling(
            array,
            metric=metric,
            method=method,
            labels=labels,
            level=level,
            max_features=max_features,
            seed=seed,
            n_splits=n_splits,
            name=name,
        )
    except NoiseCeilingError as error:
        warnings.warn(str(error), NoiseCeilingWarning, stacklevel=3)
        return None
    if min_ceiling is not None and ceiling.ceiling < min_ceiling:
        warnings.warn(
            f"region {name!r}: its noise ceiling is {ceiling.ceiling:.3f} (split-half reliability "
            f"{ceiling.reliability:.3f} ± {ceiling.reliability_std:.3f} over "
            f"{len(ceiling.split_reliabilities)} splits of {ceiling.n_repeats} repeats), below "
            f"{min_ceiling}: even a perfect model would be barely similar to its RDM, so it can hardly "
            "guide a search",
            NoiseCeilingWarning,
            stacklevel=3,
        )
    return ceiling


def load_responses(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads responses per region from an `.npz` file or an HDF5 file (its top-level datasets).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is neither an `.npz` nor an HDF5 file, or holds something else than arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"responses file not found: {path}")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as file:
            return {name: item[()] for name, item in file.items() if isinstance(item, h5py.Dataset)}
    if zipfile.is_zipfile(path):
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except ValueError as error:
            raise ValueError(f"{path}: not an .npz file of numeric arrays ({error})") from None
    raise ValueError(f"{path}: responses must be an .npz or an HDF5 file")


def average_repeats(region: str, responses: Any, n_images: int) -> np.ndarray:
    """A region's responses as `(n_images, n_sites)`: repeats (a last axis) averaged, ignoring NaN.

    Raises:
        ValueError: naming the region, when the responses are ragged, not real numbers, of the wrong
            shape, for another number of images than the probe set, of fewer than 2 sites or no repeats,
            beyond the float32 range, or when some image has no recorded repeat at some site.
    """
    where = f"region {region!r}"
    try:
        responses = np.asarray(responses)
    except ValueError as error:
        raise ValueError(
            f"{where}: responses must be a rectangular array; they are ragged ({error})"
        ) from None
    if responses.dtype.kind not in "iuf":
        raise ValueError(f"{where}: responses must be real numbers; got dtype {responses.dtype}")
    if responses.ndim not in (2, 3):
        raise ValueError(
            f"{where}: responses must have shape (n_images, n_sites) or "
            f"(n_images, n_sites, n_repeats); got {responses.shape}"
        )
    if responses.shape[0] != n_images:
        raise ValueError(
            f"{where} has responses to {responses.shape[0]} images but the probe set has {n_images}"
        )
    if responses.shape[1] < 2:
        raise ValueError(
            f"{where} has {responses.shape[1]} site(s); an RDM of a region needs at least 2 sites (the "
            "correlation of single values is undefined)"
        )
    if responses.ndim == 3 and responses.shape[2] == 0:
        raise ValueError(f"{where}: responses have no repeats (shape {responses.shape})")
    responses = responses.astype(np.float64)
    largest = float(np.nanmax(np.abs(responses), initial=0.0, where=np.isfinite(responses)))
    if largest > np.finfo(np.float32).max:
        raise ValueError(
            f"{where}: responses up to {largest:.3g} overflow float32, in which RDMs are computed; "
            "rescale them"
        )
    if responses.ndim == 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" for all-NaN repeats
            responses = np.nanmean(responses, axis=-1)
    missing = int(np.count_nonzero(~np.isfinite(responses)))
    if missing:
        raise ValueError(f"{where}: {missing} (image, site) responses have no finite value")
    return np.asarray(responses, dtype=np.float64)


def _checked_rdm(what: str, features: Any, allow_constant: bool, **rdm_arguments: Any) -> RDM:
    """The RDM of a layer's or region's features; a constant representation is an error naming `what`
    unless `allow_constant`. An RDM that is not finite (an overflow) is always an error."""
    features = np.asarray(features)
    if (
        not allow_constant
        and features.size
        and np.ptp(features.reshape(len(features), -1), axis=0).max() == 0
    ):
        raise ValueError(
            f"{what} gives the same values for every probe image (e.g. all zeros); it cannot guide a "
            "search. Pass allow_constant=True to store its constant RDM anyway"
        )
    computed = rdm(features, **rdm_arguments)
    if not np.isfinite(computed.values).all():
        raise ValueError(f"{what}: its RDM has NaN or inf values (the responses overflow); rescale them")
    if not allow_constant and np.ptp(computed.values) == 0:
        raise ValueError(
            f"{what} has a constant RDM: every dissimilarity is {computed.values[0]:g} (e.g. no image's "
            "pattern varies across units); it cannot guide a search. Pass allow_constant=True to "
            "store it anyway"
        )
    return computed


def _load_model(model_or_path: Any) -> tuple[Any, str]:
    """The model, and the source to record: the file's path, or the model's name."""
    import keras

    if isinstance(model_or_path, keras.Model):
        return model_or_path, model_or_path.name
    path = Path(model_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a Keras model saved as .keras")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a Keras model file (a .keras file is a zip archive; this one is not)")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:
        raise ValueError(f"{path}: cannot load the Keras model ({first_line(error)})") from error
    return model, str(path)


def _check_layer_names(model: Any, layer_names: Sequence[str]) -> None:
    if not layer_names:
        raise ValueError(f"model {model.name!r}: no layers to register; name them with layers=[...]")
    for name in layer_names:
        check_rdm_name(name, "layer name")
    valid = [layer.name for layer in model.layers]
    unknown = [name for name in layer_names if name not in valid]
    if unknown:
        raise ValueError(
            f"model {model.name!r} has no layer(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(valid)}"
        )
    duplicated = sorted({name for name in layer_names if layer_names.count(name) > 1})
    if duplicated:
        raise ValueError(f"layer(s) named more than once: {', '.join(duplicated)}")
    for name in layer_names:
        if single_output(model.get_layer(name)) is None:
            raise ValueError(f"layer {name!r} of model {model.name!r} has no single output tensor")


def _check_choices(metric: str, level: str, labels: np.ndarray | None) -> None:
    """Checks `metric` and `level` before any work is done (`rdm` checks them again, after)."""
    check_choice("metric", metric, METRICS)
    check_choice("level", level, LEVELS)
    if level == "category" and labels is None:
        raise ValueError("level='category' needs probe_labels: a category RDM averages each label's images")


def _existing_store(
    path: str | os.PathLike[str],
    images: np.ndarray,
    labels: np.ndarray | None,
    names: list[str],
    overwrite: bool,
) -> TeacherStore | None:
    """The teacher file at `path` opened for adding `names`, or `None` if there is none yet.

    Checked before any work is done: the file's directory must exist and be writable; an existing file
    must hold the same probe set, and must not hold any of `names` already unless `overwrite`.
    """
    check_writable_directory(os.path.dirname(os.path.realpath(path)), f"the directory of {os.fspath(path)},")
    if not Path(path).exists():
        return None
    store = TeacherStore.open(path, writable=True)
    if store.fingerprint != probe_fingerprint(images, labels):
        raise ValueError(
            f"{path} holds a different probe set (images or labels); register into a new file instead"
        )
    clashes = [name for name in names if name in store.layer_names]
    if clashes and not overwrite:
        raise ValueError(
            f"{path} already has RDM(s) {', '.join(clashes)}; pass overwrite=True to replace them"
        )
    return store
