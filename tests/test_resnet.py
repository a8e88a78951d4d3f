import keras
import numpy as np
import pytest

from keras_sage.hypermodels import representation_endpoints, resnet_cifar


def trainable_parameters(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


@pytest.mark.parametrize(("depth", "millions"), [(20, 0.27), (56, 0.85)])
def test_parameter_count_matches_he_et_al(depth, millions):
    # He et al. (2016), Table 6: ResNet-20 0.27M, ResNet-56 0.85M parameters (option A shortcuts).
    model = resnet_cifar(depth, num_classes=10)
    assert round(trainable_parameters(model) / 1e6, 2) == millions
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convolutions) + 1 == depth


def test_endpoints_are_the_three_stacks():
    model = resnet_cifar(20, num_classes=100, input_shape=(32, 32, 3))
    assert representation_endpoints(model) == ["L1", "L2", "L3"]
    shapes = [model.get_layer(name).output.shape for name in ["L1", "L2", "L3"]]
    assert shapes == [(None, 32, 32, 16), (None, 16, 16, 32), (None, 8, 8, 64)]
    assert model.output.shape == (None, 100)


def test_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match="got 21"):
        resnet_cifar(21)
    with pytest.raises(ValueError, match="got 2"):
        resnet_cifar(2)


def test_downsampling_shortcut_is_subsampled_input_and_zero_channels():
    model = resnet_cifar(8, num_classes=10, input_shape=(8, 8, 3))
    probe = keras.Model(
        model.input, [model.get_layer("L1").output, model.get_layer("stack2_block1_shortcut_pad").output]
    )
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    stack_1, shortcut = (keras.ops.convert_to_numpy(t) for t in probe(images))
    assert shortcut.shape == (2, 4, 4, 32)
    np.testing.assert_array_equal(shortcut[..., :16], stack_1[:, ::2, ::2, :])
    np.testing.assert_array_equal(shortcut[..., 16:], 0.0)


def test_odd_input_size_builds():
    model = resnet_cifar(8, num_classes=3, input_shape=(7, 7, 1))
    assert [model.get_layer(name).output.shape[1] for name in ["L1", "L2", "L3"]] == [7, 4, 2]


def test_endpoints_survive_save_and_load(tmp_path):
    model = resnet_cifar(8, num_classes=4, input_shape=(8, 8, 3))
    path = tmp_path / "teacher.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert representation_endpoints(loaded) == ["L1", "L2", "L3"]
    images = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)
    regularized = [layer for layer in loaded.layers if getattr(layer, "kernel_regularizer", None) is not None]
    assert float(regularized[0].kernel_regularizer.l2) == pytest.approx(5e-5)
