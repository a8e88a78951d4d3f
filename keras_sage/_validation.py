"""Checks of the arguments users pass, shared by every room; imports nothing of keras-sage or elsewhere."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any


def check_positive_int(name: str, value: Any) -> int:
    """Returns `value` as an `int` if it is a positive integer, else raises a ValueError naming `name`.

    Python and numpy integers are accepted; booleans (Python or numpy), floats (even `2.0`) and strings
    are refused.

    Args:
        name: The parameter's name, as the error message shows it.
        value: The value passed for it.

    Returns:
        `value` as a Python `int`.

    Raises:
        ValueError: If `value` is not an integer of at least 1.

    Example:

    ```python
    batch_size = check_positive_int("batch_size", np.int64(32))  # 32, an int
    check_positive_int("batch_size", 0)  # ValueError: batch_size must be a positive integer, got 0.
    ```
    """
    boolean = _is_boolean(value)
    try:
        number = operator.index(value)
    except TypeError:
        number = 0
    if boolean or number < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return number


def check_non_negative_number(name: str, value: Any) -> float:
    """Returns `value` as a `float` if it is a finite real number of at least 0, else raises naming `name`.

    Python and numpy integers and floats are accepted; booleans and strings are refused.

    Args:
        name: The parameter's name, as the error message shows it.
        value: The value passed for it.

    Returns:
        `value` as a Python `float`.

    Raises:
        TypeError: If `value` is not a real number (a string, a boolean, None, ...).
        ValueError: If it is negative, NaN or infinite.

    Example:

    ```python
    alpha = check_non_negative_number("alpha", 1)  # 1.0
    check_non_negative_number("alpha", "1.0")  # TypeError: alpha must be a number, got '1.0' (str).
    ```
    """
    boolean = _is_boolean(value)
    if boolean or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number of at least 0, got {value!r}.")
    return number


def check_fraction(name: str, value: Any) -> float:
    """Returns `value` as a `float` if it is a real number in [0, 1] (an accuracy), else raises naming `name`.

    Args:
        name: The parameter's name, as the error message shows it.
        value: The value passed for it.

    Returns:
        `value` as a Python `float`.

    Raises:
        TypeError: If `value` is not a real number (a string, a boolean, None, ...).
        ValueError: If it is outside [0, 1] or NaN.

    Example:

    ```python
    accuracy = check_fraction("validation_accuracy", np.float32(0.75))  # 0.75
    check_fraction("validation_accuracy", 75)  # ValueError: ... must be a number in [0, 1], got 75.
    ```
    """
    number = check_non_negative_number(name, value)
    if number > 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    return number


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raises a ValueError naming `name`, `value` and the `choices` unless `value` is one of them.

    Args:
        name: The parameter's name, as the error message shows it.
        value: The value passed for it.
        choices: The values it may take, in the order the message lists them.

    Raises:
        ValueError: If `value` is not in `choices`.

    Example:

    ```python
    check_choice("layout", "mnist", ("cifar", "imagenet"))
    # ValueError: layout must be one of 'cifar', 'imagenet', got 'mnist'.
    ```
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")


def _is_boolean(value: Any) -> bool:
    """Whether `value` is a Python or numpy boolean (which `operator.index` and `numbers.Real` accept)."""
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b"
