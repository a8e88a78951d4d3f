"""count_flops: 2 × the multiply-accumulates of convolutions and dense layers, checked by hand."""

import keras
import pytest

from keras_sage.hypermodels import resnet_cifar
from keras_sage.model_size import count_flops


def single_layer_model(layer: keras.layers.Layer, input_shape: tuple[int, ...]) -> keras.Model:
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize(
    ("layer", "input_shape", "multiply_accumulates"),
    [
        # Output 4×4 (stride 2, same padding) × kernel 3·3·5 × 7 filters.
        (keras.layers.Conv2D(7, 3, strides=2, padding="same"), (8, 8, 5), 4 * 4 * 3 * 3 * 5 * 7),
        # Valid padding: 6×6 outputs; groups of 2 see half the input channels each.
        (keras.layers.Conv2D(6, 3, groups=2), (8, 8, 4), 6 * 6 * 3 * 3 * 2 * 6),
        # Depthwise 3×3 on 5 channels, multiplier 2, at 8×8.
        (
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
            (8, 8, 5),
            8 * 8 * 3 * 3 * 5 * 2,
        ),
        # Separable: depthwise 5·5·4 plus pointwise 4·9, at 4×4 outputs.
        (
            keras.layers.SeparableConv2D(9, 5, strides=2, padding="same"),
            (8, 8, 4),
            4 * 4 * (5 * 5 * 4 + 4 * 9),
        ),
        # Transposed: every input position spreads a 3·3·6 kernel over 2 input channels.
        (keras.layers.Conv2DTranspose(6, 3, strides=2), (5, 5, 2), 5 * 5 * 3 * 3 * 6 * 2),
        (keras.layers.Conv1D(4, 3, padding="same"), (10, 2), 10 * 3 * 2 * 4),
        (keras.layers.Dense(5), (12,), 12 * 5),
        # A dense layer on a sequence runs at every position.
        (keras.layers.Dense(5), (7, 12), 7 * 12 * 5),
    ],
)
def test_flops_are_twice_the_multiply_accumulates(layer, input_shape, multiply_accumulates):
    assert count_flops(single_layer_model(layer, input_shape)) == 2 * multiply_accumulates


def test_pooling_normalization_and_activations_are_not_counted():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.BatchNormalization()(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    assert count_flops(keras.Model(inputs, x)) == 0


def test_nested_models_are_counted():
    inner = single_layer_model(keras.layers.Conv2D(4, 3, padding="same"), (8, 8, 2))
    inputs = keras.Input((8, 8, 2))
    x = inner(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outer = keras.Model(inputs, keras.layers.Dense(3)(x))
    assert count_flops(outer) == 2 * (8 * 8 * 3 * 3 * 2 * 4 + 4 * 3)


def test_resnet_20_has_he_et_al_s_41_million_mult_adds():
    multiply_accumulates = count_flops(resnet_cifar(depth=20)) / 2
    assert multiply_accumulates == pytest.approx(41e6, rel=0.02)


def test_an_unknown_input_size_is_an_error_naming_the_layer():
    model = single_layer_model(keras.layers.Conv2D(4, 3, name="first_conv"), (None, None, 3))
    with pytest.raises(ValueError, match="Layer 'first_conv' has an unknown size"):
        count_flops(model)
