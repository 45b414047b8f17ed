"""``python -m export ...`` in a checkout = ``ecg-keras export ...`` (logic in :mod:`ecg_keras.cli.export`)."""
import sys

from ecg_keras.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
