"""`python -m keras_sage.cli`, the same as the `keras-sage` command."""

from keras_sage.cli import run

run()
