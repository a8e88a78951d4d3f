import json
import os
import stat

import h5py
import numpy as np
import pytest

from keras_sage.rsa import RDM
from keras_sage.teachers import TeacherFileError, TeacherStore, probe_fingerprint

N_IMAGES = 6


@pytest.fixture
def probe():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N_IMAGES, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 0, 1, 1, 2, 2])
    return images, labels


def image_rdm(seed: int, n: int = N_IMAGES) -> RDM:
    values = np.random.default_rng(seed).random(n * (n - 1) // 2).astype(np.float32)
    return RDM(
        values, n=n, metric="correlation", level="image", n_features=100, n_features_used=50, seed=seed
    )


def category_rdm() -> RDM:
    return RDM(
        np.array([0.25, 0.5, 0.75], dtype=np.float32),
        n=3,
        metric="euclidean",
        level="category",
        n_features=40,
        n_features_used=40,
        seed=0,
        categories=np.array([0, 1, 2]),
    )


@pytest.fixture
def teacher_path(tmp_path, probe):
    path = tmp_path / "teacher.h5"
    store = TeacherStore.create(path, *probe, source="unit test")
    store.add_rdm("conv1", image_rdm(1), source="model.keras", layer="block1_conv")
    return path


def test_round_trip_keeps_probe_values_and_attributes(tmp_path, probe):
    images, labels = probe
    path = tmp_path / "teacher.h5"
    store = TeacherStore.create(path, images, labels, source="digits")
    first, second = image_rdm(1), category_rdm()
    store.add_rdm("conv1", first, source="model.keras", layer="block1_conv")
    store.add_rdm("IT", second, kind="neural-region", source="recordings.npz")

    reopened = TeacherStore.open(path)
    assert reopened.layer_names == ["conv1", "IT"]
    assert reopened.probe_images.dtype == np.uint8
    np.testing.assert_array_equal(reopened.probe_images, images)
    np.testing.assert_array_equal(reopened.probe_labels, labels)
    assert reopened.fingerprint == probe_fingerprint(images, labels.astype(np.int64))
    assert reopened.source == "digits"

    conv1 = reopened.rdm("conv1")
    assert conv1.values.dtype == np.float32
    assert conv1.values.tobytes() == first.values.tobytes()
    assert (conv1.n, conv1.metric, conv1.level, conv1.n_features, conv1.n_features_used, conv1.seed) == (
        N_IMAGES,
        "correlation",
        "image",
        100,
        50,
        1,
    )
    assert conv1.name == "conv1"
    assert conv1.categories is None
    assert reopened.layer_info("conv1") == {
        "kind": "model-layer",
        "source": "model.keras",
        "layer": "block1_conv",
        "metric": "correlation",
        "level": "image",
        "n": N_IMAGES,
        "n_features": 100,
        "n_features_used": 50,
        "seed": 1,
    }
    region = reopened.rdms()["IT"]
    assert region.values.tobytes() == second.values.tobytes()
    np.testing.assert_array_equal(region.categories, [0, 1, 2])
    assert reopened.layer_info("IT")["kind"] == "neural-region"
    assert reopened.layer_info("IT")["layer"] == "IT"

    with h5py.File(path, "r") as file:
        assert file.attrs["format"] == "keras-sage-teacher"
        assert file.attrs["format_version"] == 1
        assert file["probe/images"].compression == "gzip"
        assert file["probe"].attrs["fingerprint"] == reopened.fingerprint


def test_float_images_are_stored_as_float32(tmp_path):
    images = np.linspace(0, 1, 4 * 2 * 2 * 1).reshape(4, 2, 2, 1)
    TeacherStore.create(tmp_path / "t.h5", images)
    reopened = TeacherStore.open(tmp_path / "t.h5")
    assert reopened.probe_images.dtype == np.float32
    np.testing.assert_array_equal(reopened.probe_images, images.astype(np.float32))
    assert reopened.probe_labels is None


def test_adding_a_layer_to_an_existing_file_keeps_the_others(teacher_path):
    before = TeacherStore.open(teacher_path).rdm("conv1")
    store = TeacherStore.open(teacher_path, writable=True)
    store.add_rdm("conv2", image_rdm(2))

    reopened = TeacherStore.open(teacher_path)
    assert reopened.layer_names == ["conv1", "conv2"]
    assert reopened.rdm("conv1").values.tobytes() == before.values.tobytes()
    assert reopened.layer_info("conv1")["layer"] == "block1_conv"
    assert reopened.rdm("conv2").values.tobytes() == image_rdm(2).values.tobytes()


def test_existing_name_needs_overwrite(teacher_path):
    store = TeacherStore.open(teacher_path, writable=True)
    with pytest.raises(ValueError, match="already has an RDM named 'conv1'"):
        store.add_rdm("conv1", image_rdm(3))
    store.add_rdm("conv1", image_rdm(3), overwrite=True)
    assert TeacherStore.open(teacher_path).rdm("conv1").values.tobytes() == image_rdm(3).values.tobytes()


def test_failed_write_leaves_the_old_file_intact(teacher_path, monkeypatch):
    old_bytes = teacher_path.read_bytes()
    store = TeacherStore.open(teacher_path, writable=True)
    create_dataset = h5py.Group.create_dataset

    def fail_on_new_layer(self, name, *args, **kwargs):
        if name == "conv2":
            raise RuntimeError("disk full")
        return create_dataset(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_new_layer)
    with pytest.raises(RuntimeError, match="disk full"):
        store.add_rdm("conv2", image_rdm(2))
    monkeypatch.undo()

    assert teacher_path.read_bytes() == old_bytes
    assert [p.name for p in teacher_path.parent.iterdir()] == ["teacher.h5"]
    assert store.layer_names == ["conv1"]
    assert TeacherStore.open(teacher_path).layer_names == ["conv1"]


def test_open_is_read_only(teacher_path, monkeypatch):
    modes = []
    real_file = h5py.File

    def recording_file(name, mode="r", *args, **kwargs):
        modes.append(mode)
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", recording_file)
    store = TeacherStore.open(teacher_path)
    store.rdms()
    assert modes and set(modes) == {"r"}
    with pytest.raises(TeacherFileError, match="opened read-only"):
        store.add_rdm("conv2", image_rdm(2))


def test_truncated_file_is_a_teacher_file_error(teacher_path):
    data = teacher_path.read_bytes()
    teacher_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TeacherFileError, match="truncated") as error:
        TeacherStore.open(teacher_path)
    assert str(teacher_path) in str(error.value)


def test_unknown_format_version_names_file_and_readable_versions(teacher_path):
    with h5py.File(teacher_path, "r+") as file:
        file.attrs["format_version"] = 7
    with pytest.raises(TeacherFileError, match=r"format_version 7 .* reads version\(s\) 1") as error:
        TeacherStore.open(teacher_path)
    assert str(teacher_path) in str(error.value)


@pytest.mark.parametrize("group", ["rdms", "probe"])
def test_missing_group(teacher_path, group):
    with h5py.File(teacher_path, "r+") as file:
        del file[group]
    with pytest.raises(TeacherFileError, match=f"missing group /{group}"):
        TeacherStore.open(teacher_path)


def test_missing_layer_attribute(teacher_path):
    with h5py.File(teacher_path, "r+") as file:
        del file["rdms/conv1"].attrs["metric"]
    with pytest.raises(TeacherFileError, match="/rdms/conv1 lacks attribute"):
        TeacherStore.open(teacher_path)


def test_not_a_teacher_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.zeros(3)
    with pytest.raises(TeacherFileError, match="not a keras-sage teacher file"):
        TeacherStore.open(path)


def test_modified_probe_images_are_detected(teacher_path):
    with h5py.File(teacher_path, "r+") as file:
        file["probe/images"][0, 0, 0, 0] ^= 1
    with pytest.raises(TeacherFileError, match="probe images or labels were modified"):
        TeacherStore.open(teacher_path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.h5"):
        TeacherStore.open(tmp_path / "nowhere.h5")


def test_unknown_layer_lists_valid_names(teacher_path):
    store = TeacherStore.open(teacher_path)
    with pytest.raises(KeyError, match="no RDM named 'fc'; it has: conv1"):
        store.rdm("fc")
    with pytest.raises(KeyError, match="it has: conv1"):
        store.layer_info("fc")


def test_rdm_must_fit_the_probe_set(tmp_path, probe):
    store = TeacherStore.create(tmp_path / "t.h5", *probe)
    with pytest.raises(ValueError, match="over 5 images but the probe set has 6"):
        store.add_rdm("conv1", image_rdm(1, n=5))
    unlabelled = TeacherStore.create(tmp_path / "u.h5", probe[0])
    with pytest.raises(ValueError, match="probe set has no labels"):
        unlabelled.add_rdm("IT", category_rdm())
    with pytest.raises(ValueError, match="kind must be one of"):
        store.add_rdm("conv1", image_rdm(1), kind="teacher")
    with pytest.raises(ValueError, match="without '/'"):
        store.add_rdm("a/b", image_rdm(1))
    assert TeacherStore.open(tmp_path / "t.h5").layer_names == []


def test_create_refuses_to_replace_without_overwrite(teacher_path, probe):
    with pytest.raises(FileExistsError, match=r"teacher\.h5"):
        TeacherStore.create(teacher_path, *probe)
    TeacherStore.create(teacher_path, *probe, overwrite=True)
    assert TeacherStore.open(teacher_path).layer_names == []


def test_bad_probe_sets(tmp_path):
    with pytest.raises(ValueError, match="at least 3 images"):
        TeacherStore.create(tmp_path / "t.h5", np.zeros((2, 4, 4, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"probe_labels must have shape \(3,\)"):
        TeacherStore.create(tmp_path / "t.h5", np.zeros((3, 4, 4, 1), dtype=np.uint8), [0, 1])
    with pytest.raises(ValueError, match="uint8 or floating point"):
        TeacherStore.create(tmp_path / "t.h5", np.zeros((3, 4, 4, 1), dtype=np.int32))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TeacherStore.create(tmp_path / "missing" / "t.h5", np.zeros((3, 4, 4, 1), dtype=np.uint8))


def test_probe_fingerprint_covers_dtype_shape_bytes_and_labels(probe):
    images, labels = probe
    reference = probe_fingerprint(images, labels)
    assert probe_fingerprint(images.copy(), labels.copy()) == reference
    floats = images.astype(np.float32)
    assert probe_fingerprint(floats.astype(np.float64), labels.astype(np.int32)) == probe_fingerprint(
        floats, labels
    )
    assert probe_fingerprint(images, None) != reference
    assert probe_fingerprint(images, labels[::-1]) != reference
    assert probe_fingerprint(images.astype(np.float32), labels) != reference
    assert probe_fingerprint(images.reshape(N_IMAGES, 8, 24, 1), labels) != reference
    changed = images.copy()
    changed[-1, -1, -1, -1] ^= 1
    assert probe_fingerprint(changed, labels) != reference


# Teacher versions (format version 2).


def test_versions_are_added_beside_a_version_1_file_and_read_back_with_h5py(teacher_path):
    with h5py.File(teacher_path, "r") as file:
        assert file.attrs["format_version"] == 1  # a file without versions stays version 1
        original = file["rdms/conv1"][()]
    store = TeacherStore.open(teacher_path, writable=True)
    assert store.versions == [0] and store.latest_version == 0 and store.version == 0
    first = {"layer_1": image_rdm(11), "layer_2": image_rdm(12)}
    second = {"layer_1": image_rdm(21)}
    assert store.add_version(first, 0.75, source="step 1", trial_id="04", hyperparameters={"filters": 8}) == 1
    assert (
        store.add_version(second, 0.8, trial_id="09", hyperparameters={"a": [1, 2]}, training={"epochs": 6})
        == 2
    )

    with h5py.File(teacher_path, "r") as file:
        assert file.attrs["format_version"] == 2
        np.testing.assert_array_equal(file["rdms/conv1"][()], original)
        np.testing.assert_array_equal(file["versions/1/rdms/layer_1"][()], first["layer_1"].values)
        np.testing.assert_array_equal(file["versions/1/rdms/layer_2"][()], first["layer_2"].values)
        np.testing.assert_array_equal(file["versions/2/rdms/layer_1"][()], second["layer_1"].values)
        attrs = file["versions/2"].attrs
        assert attrs["validation_accuracy"] == 0.8 and attrs["trial_id"] == "09"
        assert attrs["parent_version"] == 1
        assert json.loads(attrs["hyperparameters"]) == {"a": [1, 2]}
        assert json.loads(attrs["training"]) == {"epochs": 6}
        assert file["versions/2/rdms/layer_1"].attrs["metric"] == "correlation"

    reopened = TeacherStore.open(teacher_path)
    assert reopened.versions == [0, 1, 2] and reopened.latest_version == 2
    assert reopened.layer_names == ["conv1"]  # `open` is version 0
    view = reopened.at_version(1)
    assert view.version == 1 and view.layer_names == ["layer_1", "layer_2"]
    assert view.validation_accuracy == 0.75 and view.fingerprint == reopened.fingerprint
    np.testing.assert_array_equal(view.rdm("layer_2").values, first["layer_2"].values)
    np.testing.assert_array_equal(reopened.at_version(0).rdm("conv1").values, original)
    info = reopened.version_info(1)
    assert (
        info["trial_id"] == "04" and info["source"] == "step 1" and info["hyperparameters"] == {"filters": 8}
    )
    assert info["layers"] == ["layer_1", "layer_2"] and info["parent_version"] == 0


def test_adding_rdms_to_version_0_keeps_every_version(teacher_path):
    store = TeacherStore.open(teacher_path, writable=True)
    store.add_version({"layer_1": image_rdm(11)}, 0.5)
    store.add_rdm("conv2", image_rdm(2))
    store.set_validation_accuracy(0.4)
    reopened = TeacherStore.open(teacher_path)
    assert reopened.layer_names == ["conv1", "conv2"] and reopened.validation_accuracy == 0.4
    np.testing.assert_array_equal(reopened.at_version(1).rdm("layer_1").values, image_rdm(11).values)
    assert reopened.at_version(1).validation_accuracy == 0.5


def test_a_view_is_read_only_and_unknown_versions_are_named(teacher_path):
    store = TeacherStore.open(teacher_path, writable=True)
    store.add_version({"layer_1": image_rdm(11)}, 0.5)
    with pytest.raises(TeacherFileError, match="view at teacher version 1 is read-only"):
        store.at_version(1).add_rdm("x", image_rdm(3))
    with pytest.raises(KeyError, match=r"no teacher version 3; it has: \[0, 1\]"):
        store.at_version(3)
    with pytest.raises(KeyError, match="no teacher version True"):
        store.version_info(True)
    with pytest.raises(TeacherFileError, match="opened read-only"):
        TeacherStore.open(teacher_path).add_version({"layer_1": image_rdm(11)}, 0.5)


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda store: store.add_version({"layer_1": image_rdm(12)}, 0.6),
        lambda store: store.add_rdm("conv2", image_rdm(2)),
        lambda store: store.add_rdms({"conv2": image_rdm(2)}, validation_accuracy=0.3),
        lambda store: store.set_validation_accuracy(0.4),
    ],
    ids=["add_version", "add_rdm", "add_rdms", "set_validation_accuracy"],
)
def test_a_version_is_never_overwritten_by_a_stale_store(teacher_path, rewrite):
    stale = TeacherStore.open(teacher_path, writable=True)
    TeacherStore.open(teacher_path, writable=True).add_version({"layer_1": image_rdm(11)}, 0.5)
    with pytest.raises(
        TeacherFileError, match=r"holds teacher version\(s\) \[1\] that this store has not read"
    ):
        rewrite(stale)
    reopened = TeacherStore.open(teacher_path)
    assert reopened.layer_names == ["conv1"] and reopened.validation_accuracy is None
    assert stale.layer_names == ["conv1"] and stale.validation_accuracy is None
    np.testing.assert_array_equal(
        TeacherStore.open(teacher_path).at_version(1).rdm("layer_1").values, image_rdm(11).values
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rdms": {}, "validation_accuracy": 0.5}, "needs at least one RDM"),
        ({"rdms": {"a/b": image_rdm(1)}, "validation_accuracy": 0.5}, "without '/'"),
        ({"rdms": {"x": image_rdm(1, n=5)}, "validation_accuracy": 0.5}, "over 5 images"),
        ({"rdms": {"x": image_rdm(1)}, "validation_accuracy": 1.5}, r"in \[0, 1\]"),
        (
            {"rdms": {"x": image_rdm(1)}, "validation_accuracy": 0.5, "hyperparameters": {"f": object()}},
            "JSON",
        ),
    ],
)
def test_bad_versions_are_refused_before_writing(teacher_path, arguments, message):
    before = teacher_path.read_bytes()
    with pytest.raises(ValueError, match=message):
        TeacherStore.open(teacher_path, writable=True).add_version(**arguments)
    assert teacher_path.read_bytes() == before


def test_adding_a_version_keeps_a_symlinked_files_target_and_mode(tmp_path, teacher_path):
    teacher_path.chmod(0o640)
    link = tmp_path / "link.h5"
    link.symlink_to(teacher_path)
    TeacherStore.open(link, writable=True).add_version({"layer_1": image_rdm(11)}, 0.5)
    assert link.is_symlink() and os.readlink(link) == str(teacher_path)
    assert stat.S_IMODE(teacher_path.stat().st_mode) == 0o640
    assert TeacherStore.open(teacher_path).versions == [0, 1]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda file: file.create_group("versions/x/rdms"), "named by a positive integer"),
        (lambda file: file.create_group("versions/0/rdms"), "named by a positive integer"),
        (lambda file: file.create_group("versions/\u00b2/rdms"), "named by a positive integer"),
        (
            lambda file: file["versions/1"].attrs.__setitem__("parent_version", "zero"),
            "parent_version is not an integer",
        ),
        (lambda file: file["versions/1"].attrs.__delitem__("trial_id"), "lacks attribute"),
        (lambda file: file["versions/1"].attrs.__setitem__("hyperparameters", "{not json"), "is not JSON"),
        (
            lambda file: file["versions/1"].attrs.__setitem__("validation_accuracy", 7.0),
            r"not a number in \[0, 1\]",
        ),
        (lambda file: file.attrs.__setitem__("format_version", 1), "not a group of a format_version 2 file"),
    ],
)
def test_damaged_versions_are_named(teacher_path, damage, message):
    TeacherStore.open(teacher_path, writable=True).add_version({"layer_1": image_rdm(11)}, 0.5)
    with h5py.File(teacher_path, "a") as file:
        damage(file)
    with pytest.raises(TeacherFileError, match=message):
        TeacherStore.open(teacher_path)


def test_the_format_names_are_the_same_objects_from_the_store_module_and_the_format_module():
    from keras_sage.teachers import format as teacher_format
    from keras_sage.teachers import store as store_module

    reexported = [name for name in store_module.__all__ if name != "TeacherStore"]
    assert {"TeacherFileError", "probe_fingerprint", "check_rdm_name", "FORMAT_VERSION"} <= set(reexported)
    for name in reexported:
        assert getattr(store_module, name) is getattr(teacher_format, name), name
    assert teacher_format.FORMAT_VERSION == 2 and teacher_format.READABLE_FORMAT_VERSIONS == (1, 2)
