"""first_line: how an error from elsewhere is quoted in a keras-sage message."""

import pytest

from keras_sage._errors import first_line


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            OSError("Unable to open file (truncated file: eof = 96)"),
            "Unable to open file (truncated file: eof = 96)",
        ),
        (ValueError("\n  bad header\n  at byte 12\n"), "bad header"),
        (EOFError(), "EOFError"),
        (RuntimeError("  \n "), "RuntimeError"),
        (FileNotFoundError(2, "No such file or directory"), "[Errno 2] No such file or directory"),
    ],
)
def test_the_first_line_of_the_message_or_the_type_name(error, line):
    assert first_line(error) == line
