import subprocess
import sys

import keras_sage


def test_every_public_name_resolves():
    for name in keras_sage.__all__:
        assert getattr(keras_sage, name) is not None, name


def test_unknown_name_raises_attribute_error():
    try:
        keras_sage.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_import_does_not_import_tensorflow():
    code = "import sys, keras_sage; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
