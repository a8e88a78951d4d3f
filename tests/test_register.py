import importlib
import os
import tempfile
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from keras_sage.features import default_endpoints
from keras_sage.rsa import ConstantRepresentationWarning, rdm
from keras_sage.teachers import TeacherStore, register_recordings, register_teacher

register_module = importlib.import_module("keras_sage.teachers.register")
store_module = importlib.import_module("keras_sage.teachers.store")

N_IMAGES = 10


def tiny_cnn(conv_names=("conv1", "conv2")) -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=conv_names[0])(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name=conv_names[1])(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return tiny_cnn()


@pytest.fixture(scope="module")
def probe():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N_IMAGES, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(N_IMAGES) % 3
    return images, labels


def layer_output(model, name, images):
    return keras.Model(model.input, model.get_layer(name).output).predict(
        images.astype(np.float32), verbose=0
    )


def test_rdms_equal_rdm_of_the_layer_outputs(tmp_path, model, probe):
    images, labels = probe
    store = register_teacher(
        model,
        images,
        labels,
        layers=["conv1", "hidden"],
        path=tmp_path / "teacher.h5",
        max_features=50,
        batch_size=3,
        seed=7,
        verbose=0,
    )
    reopened = TeacherStore.open(tmp_path / "teacher.h5")
    assert reopened.layer_names == ["conv1", "hidden"]
    np.testing.assert_array_equal(reopened.probe_images, images)
    for name, n_features in [("conv1", 8 * 8 * 4), ("hidden", 8)]:
        expected = rdm(layer_output(model, name, images), max_features=50, seed=7)
        stored = reopened.rdm(name)
        np.testing.assert_allclose(stored.values, expected.values, atol=1e-6)
        assert stored.values.tobytes() == store.rdm(name).values.tobytes()
        assert reopened.layer_info(name) == {
            "kind": "model-layer",
            "source": "tiny_cnn",
            "layer": name,
            "metric": "correlation",
            "level": "image",
            "n": N_IMAGES,
            "n_features": n_features,
            "n_features_used": min(50, n_features),
            "seed": 7,
        }


def test_saved_model_default_layers_and_category_level(tmp_path, model, probe):
    images, labels = probe
    model_path = tmp_path / "teacher.keras"
    model.save(model_path)
    store = register_teacher(
        str(model_path),
        images,
        labels,
        path=tmp_path / "teacher.h5",
        metric="euclidean",
        level="category",
        max_features=None,
        verbose=0,
    )
    # The last layer of each resolution (8×8, 4×4, 2×2) and the last flat layer before the classifier.
    assert store.layer_names == ["conv1", "conv2", "pool2", "hidden"]
    assert store.layer_info("conv2")["source"] == str(model_path)
    expected = rdm(layer_output(model, "conv2", images), metric="euclidean", labels=labels, level="category")
    stored = TeacherStore.open(tmp_path / "teacher.h5").rdm("conv2")
    np.testing.assert_allclose(stored.values, expected.values, rtol=1e-5)
    np.testing.assert_array_equal(stored.categories, [0, 1, 2])
    assert stored.level == "category"


def test_default_layers_follow_endpoint_names_and_sequential_models():
    assert default_endpoints(tiny_cnn(conv_names=("layer_1", "layer_2"))) == ["layer_1", "layer_2"]
    sequential = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, name="out"),
        ]
    )
    assert default_endpoints(sequential) == ["conv", "flat"]


def test_adding_layers_to_an_existing_teacher_file(tmp_path, model, probe):
    images, labels = probe
    path = tmp_path / "teacher.h5"
    register_teacher(model, images, labels, layers=["conv1"], path=path, verbose=0)
    first = TeacherStore.open(path).rdm("conv1").values.copy()
    register_teacher(model, images, labels, layers="hidden", path=path, verbose=0)
    store = TeacherStore.open(path)
    assert store.layer_names == ["conv1", "hidden"]
    assert store.rdm("conv1").values.tobytes() == first.tobytes()

    with pytest.raises(ValueError, match="already has RDM"):
        register_teacher(model, images, labels, layers=["conv1"], path=path, verbose=0)
    with pytest.raises(ValueError, match="different probe set"):
        register_teacher(model, images[::-1], labels, layers=["conv2"], path=path, verbose=0)


def test_bad_arguments(tmp_path, model, probe):
    images, _ = probe
    path = tmp_path / "teacher.h5"
    with pytest.raises(ValueError, match=r"no layer\(s\) 'conv9'; valid names: .*conv1, pool1, conv2"):
        register_teacher(model, images, layers=["conv1", "conv9"], path=path, verbose=0)
    with pytest.raises(ValueError, match="level='category' needs probe_labels"):
        register_teacher(model, images, level="category", path=path, verbose=0)
    with pytest.raises(FileNotFoundError, match=r"missing\.keras"):
        register_teacher(tmp_path / "missing.keras", images, path=path, verbose=0)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(np.random.default_rng(1).bytes(2000))
    with pytest.raises(ValueError, match=r"corrupt\.keras: not a Keras model file") as raised:
        register_teacher(corrupt, images, path=path, verbose=0)
    assert "not found" not in str(raised.value)
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("notes.txt", "a zip archive, but not a saved model")
    with pytest.raises(ValueError, match=r"other\.keras: cannot load the Keras model"):
        register_teacher(tmp_path / "other.keras", images, path=path, verbose=0)
    inputs = keras.Input((8, 8, 1))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    unsafe.save(tmp_path / "unsafe.keras")
    with pytest.raises(ValueError, match=r"unsafe\.keras: cannot load the Keras model .*safe_mode"):
        register_teacher(tmp_path / "unsafe.keras", images, path=path, verbose=0)
    assert not path.exists()


def recordings(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"V4": rng.normal(size=(N_IMAGES, 5, 3)), "IT": rng.normal(size=(N_IMAGES, 7))}


def test_recordings_from_a_dict_average_repeats_ignoring_nan(tmp_path, probe):
    images, labels = probe
    responses = recordings(0)
    responses["V4"][0, 0, 1] = np.nan
    store = register_recordings(responses, images, labels, path=tmp_path / "monkey.h5")
    reopened = TeacherStore.open(tmp_path / "monkey.h5")
    assert reopened.layer_names == ["V4", "IT"]
    v4_mean = responses["V4"].mean(axis=-1)
    v4_mean[0, 0] = (responses["V4"][0, 0, 0] + responses["V4"][0, 0, 2]) / 2
    np.testing.assert_array_equal(reopened.rdm("V4").values, rdm(v4_mean).values)
    np.testing.assert_array_equal(reopened.rdm("IT").values, rdm(responses["IT"]).values)
    info = reopened.layer_info("IT")
    assert (info["kind"], info["layer"], info["n_features"], info["n_features_used"]) == (
        "neural-region",
        "IT",
        7,
        7,
    )
    assert store.layer_names == ["V4", "IT"]


@pytest.mark.parametrize("file_format", ["npz", "h5"])
def test_recordings_from_files(tmp_path, probe, file_format):
    images, _ = probe
    responses = recordings(1)
    path = tmp_path / f"responses.{file_format}"
    if file_format == "npz":
        np.savez(path, **responses)
    else:
        with h5py.File(path, "w") as file:
            for region, array in responses.items():
                file[region] = array
    store = register_recordings(path, images, path=tmp_path / "monkey.h5", metric="cosine")
    assert sorted(store.layer_names) == ["IT", "V4"]
    assert store.layer_info("V4")["source"] == str(path)
    expected = rdm(responses["V4"].mean(axis=-1), metric="cosine")
    np.testing.assert_array_equal(TeacherStore.open(tmp_path / "monkey.h5").rdm("V4").values, expected.values)


def test_bad_recordings(tmp_path, probe):
    images, _ = probe
    path = tmp_path / "monkey.h5"
    with pytest.raises(ValueError, match="region 'IT' has responses to 9 images but the probe set has 10"):
        register_recordings({"IT": np.ones((9, 4))}, images, path=path)
    missing = np.ones((N_IMAGES, 4, 2))
    missing[3, 1, :] = np.nan
    with pytest.raises(ValueError, match=r"region 'V4': 1 .* no finite value"):
        register_recordings({"V4": missing}, images, path=path)
    with pytest.raises(ValueError, match=r"region 'V4': responses must have shape"):
        register_recordings({"V4": np.ones(N_IMAGES)}, images, path=path)
    with pytest.raises(
        FileNotFoundError, match=r"cannot write in the directory of .*missing/monkey.h5, .*\(No such"
    ):
        register_recordings(recordings(0), images, path=tmp_path / "missing" / "monkey.h5")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz"):
        register_recordings(tmp_path / "nowhere.npz", images, path=path)
    text = tmp_path / "responses.txt"
    text.write_text("1 2 3")
    with pytest.raises(ValueError, match=r"must be an \.npz or an HDF5 file"):
        register_recordings(text, images, path=path)
    assert not path.exists()


# Registration refuses what cannot guide a search, before anything is written.


def dead_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten(name="flatten")(inputs)
    alive = keras.layers.Dense(6, activation="relu", name="alive")(x)
    dead = keras.layers.Dense(4, kernel_initializer="zeros", name="dead")(alive)
    return keras.Model(inputs, keras.layers.Dense(3, name="classifier")(dead), name="dead_model")


def test_a_layer_outputting_zeros_is_an_error_naming_it_unless_allowed(tmp_path, probe):
    images, _ = probe
    path = tmp_path / "teacher.h5"
    model = dead_model()
    with pytest.raises(
        ValueError, match=r"layer 'dead' of model 'dead_model' gives the same values.*allow_constant"
    ):
        register_teacher(model, images, layers=["alive", "dead"], path=path, verbose=0)
    assert not path.exists()
    with pytest.warns(ConstantRepresentationWarning, match="'dead'"):
        store = register_teacher(
            model, images, layers=["alive", "dead"], path=path, verbose=0, allow_constant=True
        )
    assert np.ptp(store.rdm("dead").values) == 0


def test_constant_and_single_site_regions_are_errors_naming_them(tmp_path, probe):
    images, _ = probe
    path = tmp_path / "monkey.h5"
    flat = np.full((N_IMAGES, 5), 3.0)
    with pytest.raises(ValueError, match=r"region 'V4' gives the same values for every probe image"):
        register_recordings({"IT": recordings(0)["IT"], "V4": flat}, images, path=path)
    # Different for each image, but no variance across sites: every correlation distance is 1.
    flat_rows = np.repeat(np.arange(N_IMAGES, dtype=np.float64)[:, None], 5, axis=1)
    with pytest.raises(ValueError, match=r"region 'pIT' has a constant RDM: every dissimilarity is 1 "):
        register_recordings({"pIT": flat_rows}, images, path=path)
    with pytest.raises(ValueError, match=r"region 'aIT' has 1 site\(s\); .* at least 2 sites"):
        register_recordings({"aIT": np.arange(N_IMAGES * 1.0)[:, None]}, images, path=path)
    assert not path.exists()
    with pytest.warns(ConstantRepresentationWarning):
        store = register_recordings({"V4": flat}, images, path=path, allow_constant=True)
    assert store.layer_names == ["V4"]


@pytest.mark.parametrize("name", ["V4/left", "IT\x00", "", ".", "\udc80", 4])
def test_region_names_hdf5_cannot_hold_are_errors_before_anything_is_written(tmp_path, probe, name):
    images, _ = probe
    path = tmp_path / "monkey.h5"
    with pytest.raises(ValueError, match=r"region name .* cannot be stored in a teacher file"):
        register_recordings({"IT": recordings(0)["IT"], name: recordings(0)["IT"]}, images, path=path)
    assert not path.exists()


def test_non_real_overflowing_ragged_and_empty_responses_name_the_region(tmp_path, probe):
    images, _ = probe
    path = tmp_path / "monkey.h5"
    responses = recordings(0)["IT"]
    with pytest.raises(
        ValueError, match=r"region 'V4': responses must be real numbers; got dtype complex128"
    ):
        register_recordings({"V4": responses + 1j}, images, path=path)
    with pytest.raises(ValueError, match=r"region 'V4': responses up to 1e\+39 overflow float32"):
        register_recordings({"V4": np.where(np.arange(7) == 2, 1e39, responses)}, images, path=path)
    ragged = [[1.0, 2.0, 3.0]] * (N_IMAGES - 1) + [[1.0, 2.0]]
    with pytest.raises(
        ValueError, match=r"region 'V4': responses must be a rectangular array; they are ragged"
    ):
        register_recordings({"V4": ragged}, images, path=path)
    with pytest.raises(ValueError, match=r"region 'V4' has 0 site\(s\)"):
        register_recordings({"V4": np.empty((N_IMAGES, 0))}, images, path=path)
    with pytest.raises(ValueError, match=r"region 'V4': responses have no repeats"):
        register_recordings({"V4": np.empty((N_IMAGES, 4, 0))}, images, path=path)
    with pytest.raises(ValueError, match=r"region 'V4' has responses to 0 images"):
        register_recordings({"V4": np.empty((0, 4))}, images, path=path)
    assert not path.exists()


def test_a_read_only_directory_is_reported_before_the_forward_pass(tmp_path, model, probe, monkeypatch):
    images, _ = probe
    directory = tmp_path / "read-only"
    directory.mkdir()

    def no_forward_pass(*args, **kwargs):
        raise AssertionError("the forward pass ran before the directory was checked")

    monkeypatch.setattr(register_module, "layer_features", no_forward_pass)
    real_temporary_file = tempfile.TemporaryFile

    def refused_in_directory(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == directory:
            raise PermissionError(13, "Permission denied")
        return real_temporary_file(*args, dir=dir, **kwargs)

    # Root writes into a read-only directory anyway, so the refusal is simulated where chmod cannot.
    if os.geteuid() == 0:
        monkeypatch.setattr(tempfile, "TemporaryFile", refused_in_directory)
    else:
        directory.chmod(0o500)
    try:
        with pytest.raises(
            PermissionError, match=rf"cannot write in the directory of {directory}/teacher.h5, {directory} \("
        ):
            register_teacher(model, images, layers=["conv1"], path=directory / "teacher.h5", verbose=0)
        with pytest.raises(
            PermissionError, match=rf"cannot write in the directory of {directory}/monkey.h5, {directory} \("
        ):
            register_recordings(recordings(0), images, path=directory / "monkey.h5")
    finally:
        directory.chmod(0o700)
    assert list(directory.iterdir()) == []


def test_the_teachers_validation_accuracy_is_recorded_as_version_0s(tmp_path, model, probe, monkeypatch):
    images, labels = probe
    writes = []
    write_atomically = store_module.write_atomically
    monkeypatch.setattr(
        store_module, "write_atomically", lambda *args: writes.append(args[0]) or write_atomically(*args)
    )
    path = tmp_path / "teacher.h5"
    with pytest.raises(ValueError, match=r"validation_accuracy must be a number in \[0, 1\]"):
        register_teacher(
            model, images, labels, layers=["conv1"], path=path, verbose=0, validation_accuracy=1.2
        )
    assert not path.exists()
    store = register_teacher(
        model, images, labels, layers=["conv1"], path=path, verbose=0, validation_accuracy=0.61
    )
    assert writes == [path]  # the RDMs and the accuracy in one rewrite
    reopened = TeacherStore.open(path)
    assert reopened.validation_accuracy == pytest.approx(0.61) and store.validation_accuracy == pytest.approx(
        0.61
    )
    assert reopened.version_info(0)["validation_accuracy"] == pytest.approx(0.61)
    with h5py.File(path, "r") as file:
        assert file.attrs["format_version"] == 1 and file["rdms"].attrs[
            "validation_accuracy"
        ] == pytest.approx(0.61)
    # What a bootstrap step registers is what register_teacher stores.
    rdms = register_module.model_layer_rdms(model, reopened.probe_images, reopened.probe_labels, ["conv1"])
    np.testing.assert_array_equal(rdms["conv1"].values, reopened.rdm("conv1").values)


def test_the_default_layers_leave_out_a_classifier_followed_by_its_own_softmax():
    import keras

    separate = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(10, name="logits"),
            keras.layers.Softmax(name="probabilities"),
        ]
    )
    assert default_endpoints(separate) == ["conv", "flat"]
