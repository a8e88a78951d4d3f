"""The shared argument checks: check_positive_int and check_choice."""

import re

import numpy as np
import pytest

from keras_sage._validation import check_choice, check_fraction, check_non_negative_number, check_positive_int


@pytest.mark.parametrize("value", [1, 7, 2**40, np.int64(7), np.uint8(7), np.int32(1)])
def test_positive_integers_come_back_as_python_ints(value):
    number = check_positive_int("batch_size", value)
    assert number == int(value)
    assert type(number) is int


@pytest.mark.parametrize(
    "value", [0, -3, np.int64(0), True, False, np.True_, 2.0, np.float32(2.0), "3", None, [1]]
)
def test_anything_else_is_refused_with_the_name_and_the_value(value):
    message = f"shuffle_buffer must be a positive integer, got {value!r}."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_positive_int("shuffle_buffer", value)


def test_a_choice_among_the_choices_passes():
    assert check_choice("layout", "imagenet", ("cifar", "imagenet")) is None
    assert check_choice("seed", 2, range(3)) is None


@pytest.mark.parametrize("value", ["mnist", "CIFAR", None, ["cifar"]])
def test_another_value_is_refused_with_the_name_the_value_and_the_choices(value):
    message = f"layout must be one of 'cifar', 'imagenet', got {value!r}."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_choice("layout", value, ("cifar", "imagenet"))


@pytest.mark.parametrize("value", [0, 1, 2.5, np.float32(0.25), np.int64(3)])
def test_check_non_negative_number_returns_a_float(value):
    result = check_non_negative_number("alpha", value)
    assert type(result) is float and result == float(value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-0.1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (True, TypeError),
        (np.bool_(False), TypeError),
        (None, TypeError),
    ],
)
def test_check_non_negative_number_refuses(value, error):
    with pytest.raises(error, match=r"^alpha must be"):
        check_non_negative_number("alpha", value)


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), (1, 1.0), (np.float32(0.75), 0.75)])
def test_check_fraction_returns_a_float(value, expected):
    assert check_fraction("validation_accuracy", value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [(1.5, ValueError), (-0.1, ValueError), (float("nan"), ValueError), ("0.9", TypeError)],
)
def test_check_fraction_refuses(value, error):
    with pytest.raises(error, match=r"^validation_accuracy must be"):
        check_fraction("validation_accuracy", value)
