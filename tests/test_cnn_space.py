import keras
import keras_tuner
import numpy as np
import pytest

from keras_sage.hypermodels import (
    CandidateBuildError,
    CNNSearchSpace,
    LayerwiseSearchSpace,
    random_hyperparameters,
    representation_endpoints,
)


def hand_set(space: CNNSearchSpace, values: dict) -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)
    space.declare_hyperparameters(hp)
    return hp


@pytest.mark.parametrize(("input_shape", "max_layers", "count"), [((8, 8, 1), 10, 25), ((16, 16, 3), 20, 10)])
def test_random_candidates_build_and_run(input_shape, max_layers, count):
    space = CNNSearchSpace(max_layers, num_classes=5, input_shape=input_shape)
    images = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    for seed in range(count):
        hp = random_hyperparameters(space, seed)
        model = space.build(hp)
        probabilities = keras.ops.convert_to_numpy(model(images, training=False))
        assert probabilities.shape == (2, 5)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        endpoints = representation_endpoints(model)
        assert endpoints == [f"layer_{index}" for index in range(1, hp.values["num_layers"] + 1)]
        architecture = space.architecture(hp)
        assert endpoints == architecture.endpoints
        for layer in architecture.layers:
            assert model.get_layer(f"layer_{layer.index}").output.shape[1:] == (
                *layer.output_size,
                layer.filters,
            )
            assert model.get_layer(f"layer_{layer.index}_conv").strides == layer.strides


def test_random_architectures_are_consistent():
    space = CNNSearchSpace(20, num_classes=10, input_shape=(8, 8, 3))
    for seed in range(120):
        hp = random_hyperparameters(space, seed)
        architecture = space.architecture(hp)
        assert len(architecture.layers) == hp.values["num_layers"]
        sizes = {"image": (8, 8)}
        for layer in architecture.layers:
            chosen = [
                s for s in ["image", *range(1, layer.index)] if hp.values[f"connect_{s}_to_{layer.index}"]
            ]
            assert list(layer.sources) == (chosen or [layer.index - 1 if layer.index > 1 else "image"])
            assert layer.input_size == tuple(max(sizes[s][axis] for s in layer.sources) for axis in (0, 1))
            assert all(size >= 1 for size in layer.output_size)
            sizes[layer.index] = layer.output_size
        read = {s for layer in architecture.layers for s in layer.sources}
        assert architecture.joined[-1] == len(architecture.layers)
        assert set(architecture.joined) == {layer.index for layer in architecture.layers} - read


def test_layer_hyperparameters_are_inactive_beyond_num_layers():
    space = CNNSearchSpace(5, num_classes=10, input_shape=(8, 8, 1))
    hp = hand_set(space, {"num_layers": 3})
    for name in ["filters_3", "kernel_height_3", "stride_3", "connect_image_to_3", "connect_2_to_3"]:
        assert hp.is_active(name), name
    for name in ["filters_4", "normalization_5", "connect_image_to_4", "connect_3_to_4", "connect_4_to_5"]:
        assert not hp.is_active(name), name
        assert name not in hp.values
    assert hp.is_active("num_layers")


def test_layerwise_spec_matches_declared_hyperparameters():
    space = CNNSearchSpace(4, num_classes=10, input_shape=(8, 8, 1))
    assert isinstance(space, LayerwiseSearchSpace)
    spec = space.layerwise_spec()
    hp = keras_tuner.HyperParameters()
    space.declare_hyperparameters(hp)
    declared = {parameter.name: parameter for parameter in hp.space}

    expected = {spec.num_layers}
    for layer in range(1, spec.max_layers + 1):
        for choice, values in spec.layer_choices.items():
            name = spec.layer_param(choice, layer)
            expected.add(name)
            assert tuple(declared[name].values) == values
        expected.update(spec.connection(source, layer) for source in spec.sources(layer))
    assert set(declared) == expected
    assert (declared["num_layers"].min_value, declared["num_layers"].max_value) == (1, 4)
    assert isinstance(declared["connect_2_to_3"], keras_tuner.engine.hyperparameters.Boolean)
    assert spec.layer_choices["filters"] == (32, 64, 128)
    assert spec.layer_choices["activation"] == ("identity", "relu")


def test_hand_set_candidate_has_documented_topology():
    # 16x16 image. Layer 1: stride 2 -> 8x8. Layer 2 reads layer 1 (explicitly): stride 2 -> 4x4.
    # Layer 3 reads the image and layer 2 (padded 4x4 -> 16x16) -> 16x16. Layer 4 reads layer 1 -> 4x4.
    # Nothing reads layers 3 and 4: they are joined (layer 4 padded to 16x16) before pooling.
    space = CNNSearchSpace(5, num_classes=3, input_shape=(16, 16, 1))
    hp = hand_set(
        space,
        {
            "num_layers": 4,
            "stride_1": 2,
            "filters_1": 32,
            "stride_2": 2,
            "filters_2": 64,
            "connect_1_to_2": True,
            "connect_image_to_3": True,
            "connect_2_to_3": True,
            "filters_3": 32,
            "normalization_3": "batchnorm",
            "activation_3": "relu",
            "connect_1_to_4": True,
            "filters_4": 128,
            "kernel_height_4": 5,
            "kernel_width_4": 1,
            "stride_4": 2,
        },
    )
    architecture = space.architecture(hp)
    assert [layer.sources for layer in architecture.layers] == [("image",), (1,), ("image", 2), (1,)]
    assert [layer.output_size for layer in architecture.layers] == [(8, 8), (4, 4), (16, 16), (4, 4)]
    assert architecture.joined == (3, 4)

    model = space.build(hp)
    assert model.get_layer("layer_3_input_pad_2").padding == ((6, 6), (6, 6))
    assert model.get_layer("layer_3_input_concat").output.shape == (None, 16, 16, 1 + 64)
    assert model.get_layer("layer_4_conv").kernel.shape == (5, 1, 32, 128)
    assert model.get_layer("join_concat").output.shape == (None, 16, 16, 32 + 128)
    assert isinstance(model.get_layer("layer_3_batchnorm"), keras.layers.BatchNormalization)
    assert model.get_layer("layer_3").activation is keras.activations.relu
    assert model.get_layer("layer_1").activation is keras.activations.linear
    with pytest.raises(ValueError):
        model.get_layer("layer_1_batchnorm")

    # Layer 3's input holds the image, then layer 2's output centred in zeros.
    images = np.random.default_rng(1).normal(size=(2, 16, 16, 1)).astype("float32")
    probe = keras.Model(
        model.input, [model.get_layer("layer_2").output, model.get_layer("layer_3_input_concat").output]
    )
    layer_2, layer_3_input = (keras.ops.convert_to_numpy(t) for t in probe(images))
    np.testing.assert_array_equal(layer_3_input[..., :1], images)
    np.testing.assert_array_equal(layer_3_input[:, 6:10, 6:10, 1:], layer_2)
    outside = np.ones((16, 16), bool)
    outside[6:10, 6:10] = False
    assert not np.any(layer_3_input[:, outside, 1:])


def test_no_connection_reads_previous_layer_and_unread_layers_join():
    space = CNNSearchSpace(3, num_classes=2, input_shape=(8, 8, 1))
    hp = hand_set(space, {"num_layers": 3, "connect_image_to_3": True})
    architecture = space.architecture(hp)
    assert [layer.sources for layer in architecture.layers] == [("image",), (1,), ("image",)]
    assert architecture.joined == (2, 3)


def test_stride_is_capped_when_the_map_is_one_pixel():
    space = CNNSearchSpace(4, num_classes=2, input_shape=(4, 2, 1))
    hp = hand_set(space, {"num_layers": 4, **{f"stride_{index}": 2 for index in range(1, 5)}})
    architecture = space.architecture(hp)
    assert [layer.strides for layer in architecture.layers] == [(2, 2), (2, 1), (1, 1), (1, 1)]
    assert [layer.output_size for layer in architecture.layers] == [(2, 1), (1, 1), (1, 1), (1, 1)]
    assert [layer.stride_capped for layer in architecture.layers] == [False, True, True, True]
    model = space.build(hp)
    assert model.get_layer("layer_3_conv").strides == (1, 1)
    assert model.get_layer("layer_4").output.shape == (None, 1, 1, 32)


def test_odd_size_padding_puts_the_extra_row_after():
    space = CNNSearchSpace(3, num_classes=2, input_shape=(7, 7, 1))
    hp = hand_set(
        space,
        {"num_layers": 3, "stride_1": 2, "stride_2": 2, "connect_image_to_3": True, "connect_2_to_3": True},
    )
    model = space.build(hp)
    # 7 -> 4 -> 2; padding 2 up to 7 adds 5 rows: 2 before, 3 after.
    assert model.get_layer("layer_3_input_pad_2").padding == ((2, 3), (2, 3))


def test_value_outside_the_space_is_a_build_error_naming_the_layer():
    space = CNNSearchSpace(3, num_classes=2, input_shape=(8, 8, 1))
    hp = hand_set(space, {"num_layers": 2})
    hp.values["filters_2"] = 48
    with pytest.raises(CandidateBuildError, match=r"Layer 2: filters is 48"):
        space.build(hp)
    assert issubclass(CandidateBuildError, ValueError)


def test_optimizer_choices():
    hp = keras_tuner.HyperParameters()
    default = CNNSearchSpace(num_classes=2, input_shape=(8, 8, 1)).build(hp)
    assert isinstance(default.optimizer, keras.optimizers.SGD)
    assert default.optimizer.nesterov and default.optimizer.momentum == 0.9
    assert float(default.optimizer.learning_rate) == pytest.approx(0.1)

    named = CNNSearchSpace(num_classes=2, input_shape=(8, 8, 1), optimizer="adam", learning_rate=3e-4)
    model = named.build(hp)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-4)

    factory = CNNSearchSpace(
        num_classes=2, input_shape=(8, 8, 1), optimizer=lambda: keras.optimizers.RMSprop(0.01)
    )
    first, second = factory.build(hp), factory.build(hp)
    assert isinstance(first.optimizer, keras.optimizers.RMSprop)
    assert first.optimizer is not second.optimizer

    with pytest.raises(TypeError, match="optimizer instance"):
        CNNSearchSpace(num_classes=2, input_shape=(8, 8, 1), optimizer=keras.optimizers.Adam())


def test_constructor_arguments():
    space = CNNSearchSpace(np.int64(3), num_classes=np.int64(4), input_shape=np.zeros((2, 8, 8, 1)).shape[1:])
    assert (space.max_layers, space.num_classes, space.input_shape) == (3, 4, (8, 8, 1))
    assert isinstance(space.input_shape[0], int)
    with pytest.raises(ValueError, match="input_shape"):
        CNNSearchSpace(num_classes=2, input_shape=(8, 8))
    with pytest.raises(ValueError, match=r"input_shape.*got 0"):
        CNNSearchSpace(num_classes=2, input_shape=(8, 0, 1))
    with pytest.raises(ValueError, match="max_layers"):
        CNNSearchSpace(0, num_classes=2, input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="num_classes"):
        CNNSearchSpace(num_classes=1.5, input_shape=(8, 8, 1))


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_batch_norm_moving_statistics_follow_the_momentum(momentum):
    space = CNNSearchSpace(1, num_classes=2, input_shape=(4, 4, 1), batch_norm_momentum=momentum)
    model = space.build(hand_set(space, {"num_layers": 1, "normalization_1": "batchnorm"}))
    convolution, normalization = model.get_layer("layer_1_conv"), model.get_layer("layer_1_batchnorm")
    images = np.random.default_rng(0).normal(size=(8, 4, 4, 1)).astype("float32")
    features = keras.ops.convert_to_numpy(convolution(images))
    normalization(features, training=True)  # one training step's update of the moving statistics
    expected = (1 - momentum) * features.mean(axis=(0, 1, 2))  # from the initial moving mean of 0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalization.moving_mean), expected, atol=1e-6)


def test_every_space_and_teacher_uses_one_batch_norm_momentum_by_default():
    from keras_sage.hypermodels import NASBench201SearchSpace, resnet_cifar
    from keras_sage.hypermodels.base import BATCH_NORM_MOMENTUM

    space = CNNSearchSpace(1, num_classes=2, input_shape=(8, 8, 1))
    models = [
        space.build(hand_set(space, {"num_layers": 1, "normalization_1": "batchnorm"})),
        resnet_cifar(depth=8, num_classes=2, input_shape=(8, 8, 1)),
        NASBench201SearchSpace(num_classes=2, input_shape=(8, 8, 1), num_repeats=1, filters=4).build(
            keras_tuner.HyperParameters()
        ),
    ]
    for model in models:
        normalizations = [x for x in model.layers if isinstance(x, keras.layers.BatchNormalization)]
        momenta = {normalization.momentum for normalization in normalizations}
        assert momenta == {BATCH_NORM_MOMENTUM} == {0.9}, model.name
    assert CNNSearchSpace(num_classes=2, input_shape=(4, 4, 1), batch_norm_momentum=np.float64(0.99))
    for bad, error in ((1.0, ValueError), (-0.1, ValueError), ("0.9", TypeError), (True, TypeError)):
        with pytest.raises(error, match="batch_norm_momentum"):
            CNNSearchSpace(num_classes=2, input_shape=(4, 4, 1), batch_norm_momentum=bad)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_endpoints_survive_save_and_load(tmp_path):
    space = CNNSearchSpace(4, num_classes=3, input_shape=(8, 8, 1))
    hp = hand_set(
        space,
        {"num_layers": 3, "normalization_1": "batchnorm", "connect_image_to_3": True, "connect_1_to_3": True},
    )
    model = space.build(hp)
    path = tmp_path / "candidate.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert representation_endpoints(loaded) == ["layer_1", "layer_2", "layer_3"]
    images = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)


def test_kerastuner_finds_the_whole_space(tmp_path):
    space = CNNSearchSpace(3, num_classes=2, input_shape=(8, 8, 1))
    tuner = keras_tuner.RandomSearch(
        space, objective="val_accuracy", max_trials=1, directory=tmp_path, project_name="cnn"
    )
    names = {parameter.name for parameter in tuner.oracle.get_space().space}
    assert len(names) == 1 + 3 * 7 + (0 + 1 + 2)
    assert {"num_layers", "filters_3", "connect_image_to_1", "connect_2_to_3"} <= names
