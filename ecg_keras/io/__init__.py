"""Reading people's own ECG records (WFDB, CPSC ``.mat``, ``.npy``, ``.csv``) for prediction."""
from ecg_keras.io.records import (LEAD_NAMES, Record, check_signal, find_records, match_leads, read_any,
                                  to_model_input)

__all__ = ["LEAD_NAMES", "Record", "check_signal", "find_records", "match_leads", "read_any", "to_model_input"]
