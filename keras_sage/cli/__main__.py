"""`python -m keras_sage.cli`, the same as the `keras-sage` command."""

import sys

from keras_sage.cli import main

sys.exit(main())
