"""Reading people's own ECG records (WFDB, CPSC ``.mat``, ``.npy``, ``.csv`` and hospital formats).

Two layers: the format readers (``io.base``: :class:`Record`, :data:`LEAD_NAMES`, :class:`DataError`;
``io.leads``, ``io.formats`` and one module per format) sit below :mod:`ecg_keras.datasets`;
:mod:`ecg_keras.io.records` (``read_any``, ``find_records``, ``check_signal``, ``match_leads``,
``to_model_input``: any record, WFDB and CPSC ``.mat`` through the dataset readers) sits above it.
"""
from ecg_keras.io.base import LEAD_NAMES, DataError, Record

__all__ = ["LEAD_NAMES", "DataError", "Record"]
