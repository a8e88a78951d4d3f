"""Zero-cost proxies (synflow, snip, grad_norm, naswot) against hand computations on tiny networks."""

import math

import keras
import keras_tuner
import numpy as np
import pytest

from keras_sage import contract
from keras_sage.hypermodels import CellSearchSpace, CNNSearchSpace, resnet_cifar
from keras_sage.model_size import count_flops
from keras_sage.proxies import PROXY_NAMES, grad_norm, naswot, snip, synflow, zero_cost_proxies

RNG_SEED = 20


def mixed_signs(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Weights of both signs, none near 0 (so no ReLU sits at its kink)."""
    magnitudes = rng.uniform(0.2, 1.0, size=shape)
    return (magnitudes * rng.choice([-1.0, 1.0], size=shape)).astype("float32")


def two_layer_net(sequential: bool = False, batch_norm: bool = False) -> tuple[keras.Model, dict]:
    """Dense(3) [→ BN] → ReLU → Dense(2, softmax) on 4 inputs, with known weights."""
    rng = np.random.default_rng(RNG_SEED)
    weights = {
        "w1": mixed_signs(rng, 4, 3),
        "b1": mixed_signs(rng, 3),
        "w2": mixed_signs(rng, 3, 2),
        "b2": mixed_signs(rng, 2),
    }
    layers = [keras.layers.Dense(3, name="hidden")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(name="bn"))
    layers += [keras.layers.ReLU(name="relu"), keras.layers.Dense(2, activation="softmax", name="classifier")]
    if sequential:
        model = keras.Sequential([keras.Input((4,)), *layers])
    else:
        inputs = keras.Input((4,))
        x = inputs
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    model.get_layer("hidden").set_weights([weights["w1"], weights["b1"]])
    model.get_layer("classifier").set_weights([weights["w2"], weights["b2"]])
    if batch_norm:
        # γ, β, moving mean, moving variance far from the identity: synflow must not see them.
        model.get_layer("bn").set_weights(
            [np.array(v, "float32") for v in ([2, -1, 3], [1, 1, -4], [5] * 3, [9] * 3)]
        )
    return model, weights


# synflow: for a net whose |θ| keeps every ReLU open on an all-ones input, R is linear in each weight.


@pytest.mark.parametrize("sequential", [False, True])
def test_synflow_of_a_dense_net_is_its_closed_form(sequential):
    model, w = two_layer_net(sequential=sequential, batch_norm=True)
    w1, b1, w2 = (np.abs(w[k]).astype(np.float64) for k in ("w1", "b1", "w2"))  # |b2| adds no gradient
    hidden = np.ones(4) @ w1 + b1  # positive: the ReLU passes it; batch norm is removed
    upstream = w2.sum(axis=1)  # ∂R/∂hidden: R sums both logits (not the softmax, whose sum is 1)
    expected = np.sum(w1 * np.outer(np.ones(4), upstream)) + np.sum(w2 * hidden[:, None])
    # Float64 throughout: float32 would be off by about 1e-7 relative.
    assert synflow(model) == pytest.approx(expected, rel=1e-13)


def test_synflow_of_a_conv_net_is_its_closed_form():
    rng = np.random.default_rng(RNG_SEED)
    kernel, conv_bias, dense, dense_bias = (
        mixed_signs(rng, 3, 3, 1, 2),
        mixed_signs(rng, 2),
        mixed_signs(rng, 8, 3),
        mixed_signs(rng, 3),
    )
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)  # 2×2 positions × 2 channels
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("conv").set_weights([kernel, conv_bias])
    model.get_layer("classifier").set_weights([dense, dense_bias])

    kernel, conv_bias, dense = (np.abs(a).astype(np.float64) for a in (kernel, conv_bias, dense))
    # On all ones every position of channel c is Σ|K[..., c]| + |b_c|; Flatten orders (row, column, channel).
    channel_values = kernel.sum(axis=(0, 1, 2)) + conv_bias
    flat = np.tile(channel_values, 4)
    upstream = dense.sum(axis=1).reshape(4, 2)  # ∂R/∂(position, channel)
    # ∂R/∂K[a, b, 0, c] = Σ_positions (input 1) × upstream[position, c].
    conv_term = np.sum(kernel * upstream.sum(axis=0))
    dense_term = np.sum(dense * flat[:, None])
    assert synflow(model) == pytest.approx(conv_term + dense_term, rel=1e-13)


def test_synflow_takes_the_input_shape_of_a_model_of_any_size():
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(2, 1, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="classifier")(x))
    with pytest.raises(ValueError, match="input_shape"):
        synflow(model)
    # 1×1 convolution then mean: the spatial size does not change R.
    assert synflow(model, (3, 3, 1)) == pytest.approx(synflow(model, (5, 5, 1)), rel=1e-12)


# snip and grad_norm: mean cross-entropy of the logits, backpropagated by hand.


def softmax_error(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """∂(mean cross-entropy)/∂logits = (softmax − one-hot) / n."""
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return (probabilities - np.eye(logits.shape[1])[labels]) / len(labels)


@pytest.mark.parametrize("sequential", [False, True])
def test_snip_and_grad_norm_of_a_dense_net_match_backpropagation_by_hand(sequential):
    model, w = two_layer_net(sequential=sequential)
    rng = np.random.default_rng(1)
    images = rng.normal(size=(5, 4)).astype("float32")
    labels = np.array([0, 1, 1, 0, 1])

    pre_activation = images @ w["w1"] + w["b1"]
    hidden = np.maximum(pre_activation, 0)
    error = softmax_error(hidden @ w["w2"] + w["b2"], labels)
    gradient_w2 = hidden.T @ error
    gradient_w1 = images.T @ ((error @ w["w2"].T) * (pre_activation > 0))

    assert grad_norm(model, images, labels) == pytest.approx(
        np.linalg.norm(gradient_w1) + np.linalg.norm(gradient_w2), rel=1e-5
    )
    assert snip(model, images, labels) == pytest.approx(
        np.abs(gradient_w1 * w["w1"]).sum() + np.abs(gradient_w2 * w["w2"]).sum(), rel=1e-5
    )


def test_snip_and_grad_norm_count_convolution_kernels_but_not_biases():
    rng = np.random.default_rng(2)
    kernel, dense, dense_bias = mixed_signs(rng, 1, 1, 3, 4), mixed_signs(rng, 4, 2), mixed_signs(rng, 2)
    inputs = keras.Input((2, 2, 3))
    x = keras.layers.Conv2D(4, 1, activation="relu", use_bias=False, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="classifier")(x))
    model.get_layer("conv").set_weights([kernel])
    model.get_layer("classifier").set_weights([dense, dense_bias])
    images = rng.normal(size=(6, 2, 2, 3)).astype("float32")
    labels = np.array([0, 1, 0, 0, 1, 1])

    pre_activation = images @ kernel[0, 0]  # a 1×1 convolution: (6, 2, 2, 4)
    pooled = np.maximum(pre_activation, 0).mean(axis=(1, 2))
    error = softmax_error(pooled @ dense + dense_bias, labels)
    gradient_dense = pooled.T @ error
    upstream = (error @ dense.T)[:, None, None, :] / 4 * (pre_activation > 0)  # through the mean of 4
    gradient_kernel = np.einsum("nhwc,nhwk->ck", images, upstream)

    assert grad_norm(model, images, labels) == pytest.approx(
        np.linalg.norm(gradient_kernel) + np.linalg.norm(gradient_dense), rel=1e-5
    )
    assert snip(model, images, labels) == pytest.approx(
        np.abs(gradient_kernel * kernel[0, 0]).sum() + np.abs(gradient_dense * dense).sum(), rel=1e-5
    )


def test_batch_normalization_uses_the_batch_statistics():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(64, name="hidden")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn")(x))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="classifier")(x))
    rng = np.random.default_rng(3)
    images, labels = rng.normal(size=(6, 4)).astype("float32"), rng.integers(0, 2, 6)
    on_a_batch = (contract.SNIP, contract.GRAD_NORM, contract.NASWOT)
    before = zero_cost_proxies(model, images, labels, names=on_a_batch)
    gamma, beta, _, _ = model.get_layer("bn").get_weights()
    model.get_layer("bn").set_weights([gamma, beta, np.full(64, -4.0), np.full(64, 0.1)])
    assert zero_cost_proxies(model, images, labels, names=on_a_batch) == before
    assert math.isfinite(before[contract.NASWOT])  # 64 units tell the 6 images apart


# naswot: log det of K_H[i, j] = N_A − Hamming(c_i, c_j).


def test_naswot_of_known_codes_is_the_log_determinant_written_by_hand():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(3, activation="relu", name="codes")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="classifier")(x))
    model.get_layer("codes").set_weights([np.eye(3, dtype="float32"), np.zeros(3, "float32")])
    images = np.array([[1, -1, 2], [3, 2, -1], [-1, -2, 1], [1, 1, 1]], "float32")
    # Codes 101, 110, 001, 111: N_A = 3 minus the Hamming distances.
    kernel = np.array([[3, 1, 2, 2], [1, 3, 0, 2], [2, 0, 3, 1], [2, 2, 1, 3]], dtype=np.float64)
    assert naswot(model, images) == pytest.approx(np.log(np.linalg.det(kernel)), rel=1e-12)
    assert np.linalg.det(kernel) == pytest.approx(12)


def test_naswot_codes_every_kind_of_relu():
    rng = np.random.default_rng(4)
    first, second, third = mixed_signs(rng, 3, 4), mixed_signs(rng, 4, 5), mixed_signs(rng, 5, 2)
    inputs = keras.Input((3,))
    a = keras.layers.Dense(4, activation="relu", use_bias=False, name="first")(inputs)
    b = keras.layers.ReLU(name="relu_layer")(keras.layers.Dense(5, use_bias=False, name="second")(a))
    c = keras.layers.Activation("relu", name="relu_activation")(
        keras.layers.Dense(2, use_bias=False, name="third")(b)
    )
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(c))
    for name, kernel in (("first", first), ("second", second), ("third", third)):
        model.get_layer(name).set_weights([kernel])
    images = rng.normal(size=(6, 3)).astype("float32")

    relu_a = np.maximum(images @ first, 0)
    relu_b = np.maximum(relu_a @ second, 0)
    relu_c = np.maximum(relu_b @ third, 0)
    codes = (np.concatenate([relu_a, relu_b, relu_c], axis=1) > 0).astype(np.float64)
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
    sign, expected = np.linalg.slogdet(codes.shape[1] - hamming)
    assert sign == 1
    assert naswot(model, images) == pytest.approx(expected, rel=1e-12)


def test_naswot_is_minus_infinity_when_codes_cannot_tell_images_apart():
    model, _ = two_layer_net()
    twins = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [0, 1, 0, 1]], "float32")
    assert naswot(model, twins) == -math.inf
    inputs = keras.Input((4,))
    linear = keras.Model(inputs, keras.layers.Dense(2, name="classifier")(inputs))
    assert naswot(linear, twins[1:]) == -math.inf


# The search spaces' models: copied, scored, left as they were.


def search_space_models() -> list:
    relu_layers = keras_tuner.HyperParameters()
    relu_layers.Fixed("num_layers", 2)
    for layer in range(1, 3):
        relu_layers.Fixed(f"activation_{layer}", "relu")
    return [
        pytest.param(lambda: resnet_cifar(depth=8, num_classes=3, input_shape=(8, 8, 3)), id="resnet8"),
        pytest.param(
            lambda: CNNSearchSpace(num_classes=3, input_shape=(8, 8, 3)).build(relu_layers), id="cnn_space"
        ),
        pytest.param(
            lambda: CellSearchSpace(
                num_blocks=2, num_repeats=1, filters=4, num_classes=3, input_shape=(8, 8, 3)
            ).build(keras_tuner.HyperParameters()),
            id="cell_space",
        ),
    ]


@pytest.mark.parametrize("build", search_space_models())
def test_search_space_models_are_scored_and_left_unchanged(build):
    keras.utils.set_random_seed(5)
    model = build()
    rng = np.random.default_rng(5)
    images, labels = rng.normal(size=(8, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 8)
    weights = [w.copy() for w in model.get_weights()]  # batch norm's moving statistics included

    scores = zero_cost_proxies(model, images, labels)

    assert list(scores) == list(PROXY_NAMES)
    assert scores[contract.PARAMS] == model.count_params()
    assert scores[contract.FLOPS] == count_flops(model)
    assert all(scores[name] > 0 for name in (contract.SYNFLOW, contract.SNIP, contract.GRAD_NORM))
    assert math.isfinite(scores[contract.NASWOT])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights, strict=True))


def test_the_same_network_gets_the_same_scores():
    rng = np.random.default_rng(6)
    images, labels = rng.normal(size=(8, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 8)
    keras.utils.set_random_seed(6)
    model = resnet_cifar(depth=8, num_classes=3, input_shape=(8, 8, 3))
    scores = zero_cost_proxies(model, images, labels)
    assert zero_cost_proxies(model, images, labels) == scores
    keras.utils.set_random_seed(6)
    rebuilt = resnet_cifar(depth=8, num_classes=3, input_shape=(8, 8, 3))
    assert zero_cost_proxies(rebuilt, images, labels) == scores


def test_zero_cost_proxies_computes_the_requested_names_in_order():
    model, _ = two_layer_net()
    images, labels = np.random.default_rng(7).normal(size=(4, 4)).astype("float32"), np.array([0, 1, 1, 0])
    scores = zero_cost_proxies(model, images, labels, names=(contract.SNIP, contract.PARAMS))
    assert scores == {contract.SNIP: snip(model, images, labels), contract.PARAMS: 4 * 3 + 3 + 3 * 2 + 2}


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((3, 5)), np.array([0, 1, 0]), "images has shape"),
        (np.zeros((3, 4)), np.array([0, 1, 2]), r"labels must be 3 integer classes in \[0, 2\)"),
        (np.zeros((3, 4)), np.array([0.0, 1.0, 0.0]), "labels must be"),
        (np.zeros((3, 4)), np.array([0, 1]), "labels must be"),
    ],
)
def test_a_batch_that_does_not_fit_is_refused(images, labels, message):
    model, _ = two_layer_net()
    with pytest.raises(ValueError, match=message):
        zero_cost_proxies(model, images, labels)


def test_an_unknown_name_is_refused():
    model, _ = two_layer_net()
    with pytest.raises(ValueError, match=r"names must be one of 'params'.*got 'jacob_cov'"):
        zero_cost_proxies(model, np.zeros((2, 4)), np.array([0, 1]), names=("synflow", "jacob_cov"))


def test_a_model_that_cannot_be_copied_is_refused_by_name():
    inner, _ = two_layer_net()
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, inner(inputs), name="outer")
    with pytest.raises(ValueError, match=f"Layer '{inner.name}' of model 'outer' is a nested model"):
        synflow(outer)

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="Model 'subclassed' is neither functional nor"):
        synflow(Subclassed(name="subclassed"))
