"""``python -m ecg_keras COMMAND ...`` = the ``ecg-keras`` console script (see :mod:`ecg_keras.cli`)."""
import sys

from ecg_keras.cli import main

if __name__ == "__main__":
    sys.exit(main())
