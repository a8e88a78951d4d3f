import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_sage import __version__
from keras_sage.cli import main
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore

N_IMAGES = 9


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs, name="probe_cnn")
    model.save(directory / "model.keras")
    rng = np.random.default_rng(0)
    images = rng.random((N_IMAGES, 8, 8, 1)).astype(np.float32)
    labels = np.arange(N_IMAGES) % 3
    np.savez(directory / "probe.npz", images=images, labels=labels)
    np.savez(directory / "no_images.npz", pixels=images)
    return directory, model, images, labels


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("keras-sage: error: ")
    return err


def test_register_then_show(files, capsys):
    directory, model, images, labels = files
    teacher = directory / "teacher.h5"
    argv = ["teacher", "register", str(directory / "model.keras"), "--probe", str(directory / "probe.npz")]
    argv += ["--layers", "conv, pool", "-o", str(teacher), "--metric", "euclidean", "--level", "category"]
    assert main([*argv, "--max-features", "20", "--batch-size", "4", "--seed", "3", "--quiet"]) == 0
    assert capsys.readouterr().out == f"wrote {teacher}: conv, pool\n"

    store = TeacherStore.open(teacher)
    assert store.layer_names == ["conv", "pool"]
    conv_output = keras.Model(model.input, model.get_layer("conv").output).predict(images, verbose=0)
    expected = rdm(conv_output, metric="euclidean", labels=labels, level="category", max_features=20, seed=3)
    np.testing.assert_allclose(store.rdm("conv").values, expected.values, rtol=1e-5)

    assert main(["teacher", "show", str(teacher)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{teacher}: {N_IMAGES} probe images, shape (8, 8, 1), float32, 3 categories, "
        f"fingerprint {store.fingerprint[:12]}"
    )
    assert re.split(r"\s{2,}", lines[1]) == [
        "name",
        "kind",
        "n",
        "metric",
        "level",
        "features used/total",
        "source",
    ]
    assert set(lines[2]) == {"-", " "}
    model_path = str(directory / "model.keras")
    assert re.split(r"\s{2,}", lines[3]) == [
        "conv",
        "model-layer",
        "3",
        "euclidean",
        "category",
        "20/108",
        model_path,
    ]
    assert re.split(r"\s{2,}", lines[4]) == [
        "pool",
        "model-layer",
        "3",
        "euclidean",
        "category",
        "3/3",
        model_path,
    ]
    assert lines[5:] == [
        "",
        "similarities: pearson, spearman, kendall, rho-a, corr_cov, cosine_cov "
        "(cka needs image-level euclidean RDMs)",
        "layer matchings: max, mean, fixed (layer_mapping: conv, pool → student endpoints)",
        "noise ceilings: none stored (normalise_by_ceiling unavailable)",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["teacher", "show", "{dir}/missing.h5"], "teacher file not found: {dir}/missing.h5"),
        (["teacher", "show", "{dir}/probe.npz"], "{dir}/probe.npz: truncated or not an HDF5 file"),
        (
            ["teacher", "register", "{dir}/missing.keras", "--probe", "{dir}/probe.npz", "-o", "{dir}/t.h5"],
            "model file not found: {dir}/missing.keras",
        ),
        (
            ["teacher", "register", "{dir}/model.keras", "--probe", "{dir}/missing.npz", "-o", "{dir}/t.h5"],
            "probe file not found: {dir}/missing.npz",
        ),
        (
            [
                "teacher",
                "register",
                "{dir}/model.keras",
                "--probe",
                "{dir}/no_images.npz",
                "-o",
                "{dir}/t.h5",
            ],
            "{dir}/no_images.npz: no array 'images' (it has: pixels)",
        ),
        (
            ["teacher", "register", "{dir}/model.keras", "--probe", "{dir}/model.keras", "-o", "{dir}/t.h5"],
            "{dir}/model.keras: no array 'images'",
        ),
        (
            [
                "teacher",
                "register",
                "{dir}/model.keras",
                "--probe",
                "{dir}/probe.npz",
                "--layers",
                "conv,dense",
            ],
            "model 'probe_cnn' has no layer(s) 'dense'; valid names: image, conv, pool, logits",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(files, capsys, argv, message):
    directory = files[0]
    if argv[1] == "register" and "-o" not in argv:
        argv = [*argv, "-o", "{dir}/t.h5"]
    assert main([arg.format(dir=directory) for arg in argv]) == 2
    assert message.format(dir=directory) in error_line(capsys)
    assert not (directory / "t.h5").exists()


def test_usage_errors_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["teacher", "register", "model.keras", "-o", "t.h5"])
    assert exit_info.value.code == 2
    assert "--probe" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["teacher", "register", "m.keras", "--probe", "p.npz", "-o", "t.h5", "--max-features", "0"])
    assert exit_info.value.code == 2
    assert main(["teacher"]) == 2
    assert "register" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"keras-sage {__version__}\n"


def test_show_does_not_import_tensorflow(tmp_path):
    teacher = tmp_path / "teacher.h5"
    store = TeacherStore.create(teacher, np.zeros((4, 2, 2, 1), dtype=np.uint8))
    store.add_rdm("IT", rdm(np.arange(12.0).reshape(4, 3) ** 2), kind="neural-region")
    code = (
        "import sys; from keras_sage.cli import main; status = main(['teacher', 'show', sys.argv[1]]); "
        "print(status, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(teacher)], capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[3]) == ["IT", "neural-region", "4", "correlation", "image", "3/3"]
    assert lines[-1] == "0 False"


def test_command_line_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", "teacher", "show", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"keras-sage: error: {bad}: ")
    assert result.stderr.count("\n") == 1


def test_show_lists_what_the_file_can_be_scored_with(tmp_path, capsys):
    from keras_sage.teachers import register_recordings

    rng = np.random.default_rng(0)
    images = rng.random((12, 4, 4, 1)).astype(np.float32)
    truth = rng.standard_normal((12, 20))
    responses = {
        "V4": truth[:, :, None] + 0.5 * rng.standard_normal((12, 20, 4)),
        "IT": truth[:, :, None] + rng.standard_normal((12, 20, 4)),
    }
    euclidean = register_recordings(
        responses, images, path=tmp_path / "e.h5", metric="euclidean", min_ceiling=None
    )
    assert main(["teacher", "show", str(euclidean.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[6:9] == [
        "similarities: pearson, spearman, kendall, rho-a, corr_cov, cosine_cov, cka",
        "layer matchings: max, mean, fixed (layer_mapping: V4, IT → student endpoints)",
        "noise ceilings (ceiling = √reliability; normalise_by_ceiling with similarity 'pearson'):",
    ]
    for line in lines[11:13]:
        region, ceiling, reliability, spread, splits, repeats, lower, upper, method = line.split()
        stored = euclidean.noise_ceiling(region)
        assert float(ceiling) == pytest.approx(np.sqrt(stored.reliability), abs=5e-4)
        assert (float(reliability), float(spread)) == pytest.approx(
            (stored.reliability, stored.reliability_std), abs=5e-4
        )
        assert (int(splits), int(repeats), method) == (3, 4, "pearson")
        assert (float(lower), float(upper)) == pytest.approx((stored.lower, stored.upper), abs=5e-4)
    assert [line.split()[0] for line in lines[11:]] == ["V4", "IT"]

    correlation = register_recordings({"V4": responses["V4"].mean(axis=2)}, images, path=tmp_path / "c.h5")
    assert main(["teacher", "show", str(correlation.path)]) == 0
    assert capsys.readouterr().out.splitlines()[4:] == [
        "",
        "similarities: pearson, spearman, kendall, rho-a, corr_cov, cosine_cov "
        "(cka needs image-level euclidean RDMs)",
        "layer matchings: max, mean, fixed (layer_mapping: V4 → student endpoints)",
        "noise ceilings: none stored (normalise_by_ceiling unavailable)",
    ]


def test_show_lists_a_bootstrapped_files_teacher_versions(tmp_path, capsys):
    from keras_sage.rsa import RDM
    from keras_sage.teachers import register_recordings

    rng = np.random.default_rng(0)
    images = rng.random((12, 4, 4, 1)).astype(np.float32)
    path = tmp_path / "t.h5"
    truth = rng.standard_normal((12, 20, 1))
    register_recordings({"IT": truth + 0.3 * rng.standard_normal((12, 20, 4))}, images, path=path)
    store = TeacherStore.open(path, writable=True)
    values = rng.random(12 * 11 // 2).astype(np.float32)
    student = RDM(
        values, n=12, metric="correlation", level="image", n_features=30, n_features_used=30, seed=0
    )
    store.add_version({"conv_1": student, "conv_2": student}, 0.8125, trial_id="07")

    assert main(["teacher", "show", str(path)]) == 0
    out = capsys.readouterr().out
    table = out.split("teacher versions (1 scores the trials after it; version 0's RDMs are above):\n")[1]
    header, _, version_0, version_1 = table.splitlines()[:4]
    assert header.split()[:4] == ["version", "validation", "accuracy", "replaces"]
    assert version_0.split()[:5] == ["0", "-", "-", "-", "1"]
    assert version_1.split()[:5] == ["1", "0.8125", "0", "07", "2"]
