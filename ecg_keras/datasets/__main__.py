"""``python -m ecg_keras.datasets ...`` = ``ecg-keras data ...`` (parser and commands in :mod:`ecg_keras.cli.data`)."""
import sys

from ecg_keras.cli.data import main

if __name__ == "__main__":
    sys.exit(main())
