"""How an error from elsewhere (h5py, numpy, Keras) is quoted in a keras-sage message: its first line."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or the error's type name if the message is empty.

    Args:
        error: The error to quote.

    Returns:
        One line of text, never empty.

    Example:

    ```python
    first_line(ValueError("bad header\\n  at byte 12"))  # "bad header"
    first_line(EOFError())  # "EOFError"
    ```
    """
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__
