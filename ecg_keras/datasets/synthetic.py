"""Synthetic PTB-XL: a generated dataset in the exact PhysioNet PTB-XL layout.

THIS DATA IS SYNTHETIC. It is the package's embedded default dataset and test fixture: it lets
every stage (readers, tasks, windows, models, training, evaluation) run end to end without
downloading PTB-XL. Scores on it say nothing about real ECGs.

``generate_synthetic_ptbxl(dest)`` writes ``records100/NNNNN/XXXXX_lr`` and
``records500/NNNNN/XXXXX_hr`` (WFDB format 16, 1 uV resolution, 12 leads I, II, III, AVR, AVL,
AVF, V1..V6 in mV, 10 s), ``ptbxl_database.csv`` with every column of the real table,
``scp_statements.csv`` (``ecg_keras.statements.statements_frame()``), a ``SYNTHETIC`` marker
file and a ``README.txt``. Same seed -> byte-identical files, whatever ``n_jobs``. The files are
written by ``write_ptbxl_layout``, the package's one writer of that layout (also used for the
throughput and test fixtures: any metadata, any signals).

What is modelled (labels are rendered in the signal, not just written in the csv):

* Beats are sums of Gaussian waves (ECGSYN-like P, septal q, R, S, asymmetric T, plus ST,
  R', pathological Q and notch waves where a statement needs them). Each wave is a 3-D
  heart vector (x left, y inferior, z anterior); leads are projections: I = x,
  II = x cos 60 + y sin 60, and III = II - I, aVR = -(I + II)/2, aVL = I - II/2,
  aVF = II - I/2 exactly; V1..V6 project onto horizontal-plane directions from 120 to 5
  degrees, which gives the usual R-wave progression (rS in V1, transition V3/V4, qR in V6).
* Rhythms (only these rhythm statements are ever assigned, each on >= 12 % of the records,
  folds stratified on them): SBRAD 40 bpm up to, STACH from, a threshold each record draws
  from the span of published definitions (bradycardia below 50-60 bpm, tachycardia above
  90-100), SR and SARRH in between (SARRH: respiratory RR swing above the record's own sinus
  arrhythmia criterion, 10 % of the cycle to 160 ms, at 15-24 breaths/min), so a label's
  probability is monotone in the rate; AFIB 55-150 (independent
  log-normal RR intervals, coefficient of variation 0.12-0.35, no P waves, 4.5-8.5 Hz
  fibrillatory f-waves strongest in V1 and the inferior leads). Sinus RR intervals carry heart
  rate variability (McSharry et al. 2003's LF/HF spectrum) and are rescaled so that the record's
  mean rate is the class's; 8 % of sinus records have premature atrial and 6 % premature
  ventricular beats (``PAC``/``PVC`` form codes, ``extra_beats``). QT follows the preceding RR
  (Bazett), so the T wave moves beat by beat in AFIB. Wave amplitudes vary from beat to beat
  (respiration, jitter); electrode placement, QRS gain, width and axis vary between patients.
* Every record carries baseline wander, muscle, amplifier and sometimes mains noise and an
  electrode-motion transient, and passes a device band-pass (0.05 or 0.5 Hz to 150 Hz); see
  docs/SYNTHETIC.md for the sources and the measured comparison with real ECGs.
* Diagnostic/form statements with a morphological effect: NORM; IMI/ILMI (wide inferior /
  lateral Q, inferior T inversion), ASMI/AMI (QS in V1-V3 / anterior Q); NDT, NST_, ISC_,
  ISCAL, ISCIN, LNGQT (T flattening or inversion by territory, ST depression, long QT);
  CLBBB (broad QRS ~140 ms, no septal q, discordant T), CRBBB/IRBBB (terminal R' in V1,
  wide S in I/V6), LAFB (left axis), 1AVB (PR 0.22-0.32 s); LVH (Sokolow-Lyon voltage
  ~3-6.5 mV against ~0.5-3.5 mV for NORM, lateral strain in half the patients),
  RVH (right axis, tall R in V1), LAO/LAE (broad bifid P); form codes QWAVE, STD_, INVT,
  LOWT, VCLVH, LPR, LVOLT go with the effect they name. Pathology is more likely with age;
  QRS voltage falls with age and is higher in men, PR lengthens with age, QTc is longer in
  women, so age and sex are weakly learnable.
* Recording problems exactly where the csv says so (~22 % of records): ``baseline_drift``
  (0.05-0.5 Hz wander), ``static_noise`` (broadband noise, sometimes 50 Hz mains),
  ``burst_noise`` (short high-amplitude bursts), ``electrodes_problems`` (a lost electrode:
  near-flat lead). The strings name leads like PTB-XL (", I-AVR,", ", V1,V2,", "alles" =
  all leads); ``noise_leads(text)`` parses them.

Why not neurokit2: ``nk.ecg_simulate(method="multileads")`` integrates the ECGSYN ODE with
``solve_ivp`` once per lead (~2.2 s per 10-s 500 Hz record here, > 1 h for 2000 records),
draws its own RR process (no explicit RR series, so no AFIB/sinus-arrhythmia control) and
rescales every lead to [-0.4, 1.2] mV independently, which breaks III = II - I and the
augmented-lead identities. The vectorised renderer below does one record in a few ms.
"""
from __future__ import annotations

import ast
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ecg_keras.datasets.base import LEADS
from ecg_keras.files import write_plain
from ecg_keras.statements import get as _statement, statements_frame

__all__ = ["generate_synthetic_ptbxl", "write_ptbxl_layout", "write_wfdb", "record_name", "simple_signal",
           "noise_leads", "GENERATOR_VERSION", "PTBXL_COLUMNS", "RHYTHM_MIX", "RENDERED_CODES"]

GENERATOR_VERSION = "4"
DURATION_S = 10
BASE_FS = 500
# Rhythm statements actually rendered, with their exact share of the records.
RHYTHM_MIX = {"SR": 0.52, "SBRAD": 0.12, "STACH": 0.12, "SARRH": 0.12, "AFIB": 0.12}
# Published definitions of the sinus rate classes differ (docs/SYNTHETIC.md section 4): tachycardia
# above 100 bpm (the traditional 60-100 normal range) or above 90 (Spodick et al. 1992), bradycardia
# below 60 or below 50 (Spodick; Kusumoto et al. 2019). Each sinus record draws its own thresholds
# from these spans, so the probability of a label rises smoothly with the rate.
_TACHY_BPM = (90.0, 100.0)
_BRADY_BPM = (50.0, 60.0)
_SINUS_BPM = (40.0, 150.0)  # sinus rates rendered (SBRAD from 40, STACH up to 150)
_AFIB_BPM = (55.0, 150.0)
# Sinus arrhythmia: P-P range within the record above 120 ms, 160 ms, or 10 % of the cycle
# (criteria differ between texts); a SARRH record draws its criterion from that span and swings above it.
_SARRH_PP_S = (0.12, 0.16)
# HRV falls as the rate rises: median RR coefficient of variation 0.025 at <= 80 bpm, 0.012 at >= 120
# (the values generator 3 used for SR and STACH), interpolated in log over the rate, never by label.
_HRV_CV = ((80.0, 120.0), (0.025, 0.012))

# Pathologies: (code, relative weight within its class, extra form codes (code, probability)).
_PATHOLOGY = {
    "MI": [("IMI", 0.4, (("QWAVE", 0.5),)), ("ASMI", 0.35, (("QWAVE", 0.4),)),
           ("ILMI", 0.1, (("QWAVE", 0.5),)), ("AMI", 0.15, (("QWAVE", 0.5), ("ABQRS", 0.3)))],
    "STTC": [("NDT", 0.3, ()), ("NST_", 0.15, ()), ("ISC_", 0.2, (("STD_", 0.6),)),
             ("ISCAL", 0.15, (("INVT", 0.6),)), ("ISCIN", 0.1, (("INVT", 0.6),)), ("LNGQT", 0.1, ())],
    "CD": [("CLBBB", 0.15, ()), ("CRBBB", 0.2, ()), ("IRBBB", 0.2, ()), ("LAFB", 0.25, ()),
           ("1AVB", 0.2, (("LPR", 0.5),))],
    "HYP": [("LVH", 0.7, (("VCLVH", 0.6),)), ("RVH", 0.12, ()), ("LAO/LAE", 0.18, ())],
}
_PATHOLOGY_P = {"MI": 0.11, "STTC": 0.13, "CD": 0.12, "HYP": 0.07}
_P_WAVE_CODES = {"1AVB", "LPR", "LAO/LAE"}  # meaningless without P waves (AFIB)
_T_FORM = {"LOWT", "INVT"}
# Every statement the generator can assign (all with an effect in the signal).
RENDERED_CODES = frozenset(
    ["NORM", "LVOLT", "STD_", "STE_", "LOWT", "INVT", "PAC", "PVC", *RHYTHM_MIX]
    + [code for group in _PATHOLOGY.values() for code, _, _ in group]
    + [form for group in _PATHOLOGY.values() for _, _, forms in group for form, _ in forms]
)

_DEVICES = ("CS-12   E", "AT-6 C 5.5", "AT-60    3", "CS100    3", "AT-6     6", "AT-6 C")
_STADIA = ("unknown", "Stadium I", "Stadium II", "Stadium III", "Stadium I-II", "Stadium II-III")
_LIKELIHOODS = (15.0, 35.0, 50.0, 80.0, 100.0)
_LIKELIHOOD_P = (0.08, 0.1, 0.12, 0.25, 0.45)
#: The columns of PTB-XL 1.0.3's ptbxl_database.csv after its ``ecg_id`` index, in its order.
PTBXL_COLUMNS = ("patient_id", "age", "sex", "height", "weight", "nurse", "site", "device", "recording_date",
                 "report", "scp_codes", "heart_axis", "infarction_stadium1", "infarction_stadium2", "validated_by",
                 "second_opinion", "initial_autogenerated_report", "validated_by_human", "baseline_drift",
                 "static_noise", "burst_noise", "electrodes_problems", "extra_beats", "pacemaker", "strat_fold",
                 "filename_lr", "filename_hr")
_FILENAME_COLUMNS = {100: "filename_lr", 500: "filename_hr"}
_NOISE_COLUMNS = ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems")

# Lead field: heart vector (x, y, z) -> 12 leads. Limb leads from I and II (hexaxial), then the
# Einthoven/Goldberger identities; precordial leads are gains along horizontal-plane angles.
_V_ANGLES = np.deg2rad([120, 95, 75, 55, 30, 5])
_V_GAINS = np.array([1.4, 1.9, 1.9, 1.7, 1.4, 1.1])


def _lead_matrix() -> np.ndarray:
    i = np.array([1.0, 0.0, 0.0])
    ii = np.array([np.cos(np.pi / 3), np.sin(np.pi / 3), 0.0])
    limb = [i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]
    chest = [g * np.array([np.cos(a), 0.08, np.sin(a)]) for a, g in zip(_V_ANGLES, _V_GAINS)]
    return np.stack(limb + chest, axis=1)  # (3, 12)


_LEAD_MATRIX = _lead_matrix()
# (I, II, V1..V6) -> 12 leads
_DERIVE = np.zeros((8, 12))
_DERIVE[0, [0, 2, 3, 4, 5]] = [1.0, -1.0, -0.5, 1.0, -0.5]
_DERIVE[1, [1, 2, 3, 4, 5]] = [1.0, 1.0, -0.5, -0.5, 1.0]
_DERIVE[2:, 6:] = np.eye(6)


# --------------------------------------------------------------------------- record specification
@dataclass
class _Wave:
    offset: float  # s from the R peak (from the T peak when ``qt`` is True)
    sigma: float  # s
    vector: np.ndarray  # (3,) mV
    qt: bool = False  # moves with the RR-dependent QT interval
    kinds: tuple[int, ...] = (0, 1)  # beat kinds that have this wave: 0 sinus, 1 PAC, 2 PVC


@dataclass
class _Spec:
    """Everything needed to render one record; drawn in the main thread, rendered anywhere."""

    ecg_id: int
    rhythm: str
    hr: float
    waves: list[_Wave]
    qtc: float
    resp_amp: float
    resp_hz: float
    leads: np.ndarray  # (3, 8) heart vector -> I, II, V1..V6 (this patient's electrode placement)
    hrv_cv: float = 0.0  # sd of the RR modulation / mean RR
    lf_hf: float = 1.5
    resp_qrs: float = 0.05  # respiratory modulation of the wave amplitudes
    beat_jitter: float = 0.03  # independent beat-to-beat amplitude variation of each wave
    ectopics: tuple[tuple[int, float], ...] = ()  # (kind, coupling as a fraction of the RR)
    ectopic_waves: list[_Wave] = field(default_factory=list)
    af_cv: float = 0.0
    af_amp: float = 0.0
    af_hz: float = 6.0
    bw_amp: float = 0.03  # mV, baseline wander of each electrode lead
    white_uv: float = 3.0
    emg_uv: float = 3.0
    mains_uv: float = 0.0
    mains_hz: float = 50.0
    motion: bool = False
    highpass_hz: float = 0.05
    noise: dict[str, list[int]] = field(default_factory=dict)
    seed: tuple[int, int] = (0, 0)


def _unit(deg: float, z: float = 0.0) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([np.cos(a), np.sin(a), z])


def _morphology(patient: dict, codes: set[str], rhythm: str) -> tuple[list[_Wave], float, float]:
    """Waves of one beat for this patient's statements; returns (waves, qtc, frontal QRS axis)."""
    age, sex = patient["age"], patient["sex"]
    m = patient["morph"]
    gain = m["gain"] * (1.15 if sex == 0 else 1.0) * (1.25 - 0.006 * (age - 18))
    axis = m["axis"]
    if "LAFB" in codes:
        axis = m["lafb_axis"]
    if "RVH" in codes:
        axis = m["rvh_axis"]
    pr = m["pr"] + 0.0008 * (age - 40)
    if "1AVB" in codes:
        pr = m["avb_pr"]
    qtc = m["qtc"] + (0.015 if sex == 1 else 0.0)
    if "LNGQT" in codes:
        qtc = m["long_qtc"]

    r_amp = 1.25 * (1.3 * min(gain, 1.1) if "LVH" in codes else gain)
    r_vec = r_amp * _unit(axis, m["r_z"])
    if "LVH" in codes:  # extra leftward-posterior LV mass forces: tall R in V5/V6, deep S in V1/V2
        r_vec = r_vec + np.array([1.2, 0.2, -0.5])
    q_vec = gain * np.array([-0.10, 0.02, 0.14])
    s_vec = gain * np.array([-0.22, -0.18, -0.28]) * (1.5 if "LVH" in codes else 1.0)
    t_vec = gain * np.array([0.25, 0.20, 0.15]) * m["t_gain"]
    r_sigma, s_off = m["qrs_sigma"], 0.026
    waves: list[_Wave] = []

    if rhythm != "AFIB":
        p_vec = m["p_gain"] * np.array([0.10, 0.15, 0.03])
        p_off = -pr + 0.01
        if "LAO/LAE" in codes:  # broad bifid P, negative terminal part in V1
            waves += [_Wave(p_off - 0.025, 0.022, 0.7 * p_vec, kinds=(0,)),
                      _Wave(p_off + 0.03, 0.022, 0.7 * p_vec + np.array([0.0, 0.0, -0.09]), kinds=(0,))]
        else:
            waves.append(_Wave(p_off, 0.022, p_vec, kinds=(0,)))

    if "CLBBB" in codes:  # septum activated right-to-left: no septal q, broad notched R, discordant T
        r_vec = r_amp * _unit(axis - 10, -0.9)
        waves += [_Wave(-0.02, 0.024, 0.75 * r_vec), _Wave(0.04, 0.026, 0.75 * r_vec)]
        t_vec = -0.9 * gain * np.array([0.25, 0.12, -0.25])
        s_vec = 0 * s_vec
    else:
        if "RVH" in codes:
            r_vec = r_vec + gain * np.array([0.0, 0.0, 0.9])
        if "ASMI" in codes:
            q_vec = 0 * q_vec
            waves.append(_Wave(-0.018, 0.013, gain * np.array([-0.05, 0.0, -0.55])))
        else:
            waves.append(_Wave(-0.022, 0.008, q_vec))
        if "AMI" in codes:
            waves.append(_Wave(-0.018, 0.013, gain * np.array([0.15, 0.0, -0.55])))
        if "IMI" in codes or "ILMI" in codes:
            lateral = -0.35 if "ILMI" in codes else 0.0
            waves.append(_Wave(-0.02, 0.014, gain * np.array([lateral, -0.55, 0.0])))
            t_vec = t_vec * np.array([1.0, -0.8, 1.0])
        waves.append(_Wave(0.0, r_sigma, r_vec))
        if "CRBBB" in codes or "IRBBB" in codes:  # late rightward-anterior forces: rSR' in V1
            k = 1.0 if "CRBBB" in codes else 0.45
            waves.append(_Wave(0.065 if k == 1.0 else 0.045, 0.02, k * gain * np.array([-0.35, -0.05, 0.5])))
            if k == 1.0:
                t_vec = t_vec * np.array([1.0, 1.0, -0.6])
        waves.append(_Wave(s_off, 0.01, s_vec))

    st = np.zeros(3)
    if "ISC_" in codes:
        st += -m["st_dep"] * np.array([0.6, 0.6, 0.3])
    if "NST_" in codes:
        st += m["nst"] * np.array([0.5, 0.5, 0.4])
    if "NDT" in codes:
        t_vec = t_vec * m["flat_t"]
    if "ISCAL" in codes:
        t_vec = gain * np.array([-0.22, 0.08, -0.18])
        st += -m["st_dep"] * np.array([0.6, 0.0, 0.4])
    if "ISCIN" in codes:
        t_vec = gain * np.array([0.2, -0.22, 0.12])
        st += -m["st_dep"] * np.array([0.0, 0.6, 0.0])
    if "LVH" in codes and m["strain"]:
        t_vec = t_vec * np.array([-0.6, 1.0, 1.0])
        st += -0.05 * np.array([0.7, 0.2, 0.0])
    if np.any(st):
        waves.append(_Wave(0.12, 0.04, st))
    # asymmetric T: slow upstroke (broad leading Gaussian) and faster downstroke
    waves += [_Wave(-0.045, 0.05, 0.45 * t_vec, qt=True), _Wave(0.0, 0.04, 0.8 * t_vec, qt=True)]
    if "LVOLT" in codes:  # attenuation (e.g. effusion, obesity) shrinks every wave
        for w in waves:
            w.vector = 0.4 * w.vector
    return waves, qtc, float(axis)


def _ectopic_waves(rng: np.random.Generator, gain: float) -> list[_Wave]:
    """Waves of this patient's premature beats: a PAC's ectopic (low-atrial, inferiorly negative)
    P wave ahead of a normal QRS; a PVC's broad QRS (~140 ms) with a discordant T and no P."""
    p_vec = rng.uniform(0.6, 1.0) * np.array([0.08, -0.12, 0.03])
    qrs = gain * rng.uniform(1.2, 2.2) * _unit(rng.uniform(-120, 200), rng.uniform(-0.8, 0.8))
    return [_Wave(-rng.uniform(0.12, 0.16), 0.02, p_vec, kinds=(1,)),
            _Wave(-0.02, rng.uniform(0.022, 0.03), 0.7 * qrs, kinds=(2,)),
            _Wave(0.035, rng.uniform(0.022, 0.03), 0.5 * qrs, kinds=(2,)),
            _Wave(0.32, 0.06, -0.35 * qrs, kinds=(2,))]


def _electrodes(rng: np.random.Generator) -> np.ndarray:
    """(3, 8) lead field of one patient for I, II, V1..V6: precordial electrodes placed within about
    +-1 intercostal space / a few cm (angle sd 7 degrees, gain sd ~20 %), chest size and skin."""
    chest = [g * rng.lognormal(0, 0.2) * np.array([np.cos(a), 0.08, np.sin(a)])
             for a, g in zip(_V_ANGLES + np.deg2rad(rng.normal(0, 7, 6)), _V_GAINS)]
    limb = _LEAD_MATRIX[:, :2] * rng.lognormal(0, 0.1)
    return np.concatenate([limb, np.stack(chest, axis=1)], axis=1)


def _axis_label(axis: float) -> str:
    if axis < -45:
        return "ALAD"
    if axis < -30:
        return "LAD"
    if axis <= 90:
        return "MID"
    if axis <= 120:
        return "RAD"
    return "ARAD"


def _patient_morph(rng: np.random.Generator) -> dict:
    return {
        "gain": _clip(rng.lognormal(0.0, 0.25), 0.5, 1.8), "axis": _clip(rng.normal(50, 25), -28, 98),
        "qrs_sigma": rng.uniform(0.0085, 0.0125), "leads": _electrodes(rng),
        "lafb_axis": rng.uniform(-80, -48), "rvh_axis": rng.uniform(100, 150), "r_z": rng.uniform(-0.38, -0.18),
        "pr": rng.uniform(0.13, 0.18), "avb_pr": rng.uniform(0.22, 0.32), "qtc": rng.uniform(0.38, 0.43),
        "long_qtc": rng.uniform(0.48, 0.55), "t_gain": rng.uniform(0.8, 1.3), "p_gain": rng.uniform(0.8, 1.2),
        "st_dep": rng.uniform(0.08, 0.2), "nst": (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.04, 0.08),
        "flat_t": rng.uniform(-0.15, 0.3), "strain": bool(rng.random() < 0.5),
    }


# --------------------------------------------------------------------------- signal rendering
_PAD_S = 1.0  # rendered (and filtered) beyond both ends, so filters and beats have no edge effects
_NORMAL, _PAC, _PVC = 0, 1, 2


def _modulation(rng: np.random.Generator, t: np.ndarray, lf_hf: float, resp_hz: float) -> np.ndarray:
    """Zero-mean unit-variance RR modulation on the times ``t`` with McSharry et al.'s (2003) bimodal
    spectrum: Gaussian LF (Mayer waves, 0.1 Hz, sd 0.01 Hz) and HF (respiration) peaks, power ratio
    ``lf_hf``; random phases."""
    f = np.linspace(0.01, 0.5, 50)
    power = (lf_hf * np.exp(-0.5 * ((f - 0.1) / 0.01) ** 2) + np.exp(-0.5 * ((f - resp_hz) / 0.02) ** 2))
    amp = np.sqrt(power / power.sum())
    m = (amp[:, None] * np.sin(2 * np.pi * f[:, None] * t[None, :] + rng.uniform(0, 2 * np.pi, (len(f), 1)))).sum(0)
    return m * np.sqrt(2.0)


def _beat_times(spec: _Spec, rng: np.random.Generator, t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s) covering [-2.5, t_end + 2.5] and each beat's kind (normal, PAC, PVC).

    Sinus rhythms: RR(t) = RR0 (1 + cv m(t) + respiratory sinus arrhythmia), rescaled so that the
    mean RR inside [0, t_end] is exactly 60 / hr (the rate that defines the class). AFIB:
    independent log-normal RRs. Ectopic beats replace the k-th sinus beat: a PAC comes early and
    resets the sinus node, a PVC comes early and is followed by a full compensatory pause.
    """
    rr0 = 60.0 / spec.hr
    n = int((t_end + 6.0) / 0.25) + 4
    if spec.rhythm == "AFIB":
        sd = np.sqrt(np.log1p(spec.af_cv ** 2))
        rr = np.maximum(rr0 * rng.lognormal(-sd * sd / 2, sd, n), 0.27)
    else:
        grid = np.arange(-4.0, t_end + 8.0, 0.1)
        mod = spec.hrv_cv * _modulation(rng, grid, spec.lf_hf, spec.resp_hz)
        mod += spec.resp_amp * np.sin(2 * np.pi * spec.resp_hz * grid + rng.uniform(0, 2 * np.pi))
        rr = np.empty(n)
        t = -2.5
        for k in range(n):
            rr[k] = rr0 * (1.0 + np.interp(t, grid, mod))
            t += rr[k]
    times = -2.5 + rng.uniform(0, rr0) + np.concatenate([[0.0], np.cumsum(rr)])
    inside = (times >= 0) & (times < t_end)
    if spec.rhythm != "AFIB" and inside.sum() >= 2:  # the class's rate, exactly, within the record
        i0, i1 = np.flatnonzero(inside)[[0, -1]]
        mean_rr = (times[i1] - times[i0]) / (i1 - i0)
        times = times[i0] + (times - times[i0]) * (rr0 / mean_rr)
    kinds = np.zeros(len(times), dtype=np.int64)
    for kind, coupling in spec.ectopics:
        candidates = np.flatnonzero((times > 0.8) & (times < t_end - 0.8) & (kinds == _NORMAL))
        candidates = candidates[(candidates > 0) & (kinds[np.maximum(candidates - 1, 0)] == _NORMAL)]
        if not len(candidates):
            continue
        k = int(candidates[int(rng.integers(len(candidates)))])
        early = times[k - 1] + coupling * (times[k] - times[k - 1])
        if kind == _PAC:
            times[k:] -= times[k] - early
        else:
            times[k] = early
        kinds[k] = kind
    keep = times < t_end + 2.5
    return times[keep], kinds[keep]


def _render_clean(spec: _Spec, rng: np.random.Generator, fs: int = BASE_FS) -> np.ndarray:
    """The heart vector's projection on the 8 recorded leads (I, II, V1..V6), padded by ``_PAD_S``."""
    pad = int(_PAD_S * fs)
    n = DURATION_S * fs + 2 * pad
    beats, kinds = _beat_times(spec, rng, DURATION_S)
    prev_rr = np.diff(beats, prepend=beats[0] - 60.0 / spec.hr)
    t_peak = spec.qtc * np.sqrt(np.clip(prev_rr, 0.25, 2.0)) - 0.13  # T peak after R (Bazett QT minus T down-slope)
    t_scale = np.sqrt(np.clip(prev_rr, 0.3, 1.6))
    waves = spec.waves + spec.ectopic_waves
    # beat-to-beat variability: respiratory amplitude modulation (ECG-derived respiration) plus
    # independent per-wave jitter; each wave is drawn only in the beats of its kinds
    resp = 1.0 + spec.resp_qrs * np.sin(2 * np.pi * spec.resp_hz * beats + rng.uniform(0, 2 * np.pi))
    jitter = 1.0 + spec.beat_jitter * rng.standard_normal((len(waves), len(beats)))
    kind_mask = np.array([[k in w.kinds for k in kinds] for w in waves], dtype=np.float64)
    amp = resp[None, :] * jitter * kind_mask  # (W, K)
    ones = np.ones_like(beats)
    offsets = np.stack([w.offset * t_scale + t_peak if w.qt else w.offset * ones for w in waves])
    sigmas = np.stack([w.sigma * (t_scale if w.qt else ones) for w in waves])
    vectors = np.stack([w.vector for w in waves])  # (W, 3)
    centers = beats[None, :] + offsets + _PAD_S  # (W, K)
    courses = np.zeros((len(waves), n))
    for w in range(len(waves)):  # each wave evaluated only within +-5 sigma of its beats
        use = amp[w] != 0
        if not use.any():
            continue
        half = int(np.ceil(5 * sigmas[w].max() * fs))
        start = np.round(centers[w, use] * fs).astype(np.int64) - half  # (K,)
        idx = start[:, None] + np.arange(2 * half + 1)[None, :]  # (K, L)
        z = (idx / fs - centers[w, use][:, None]) / sigmas[w, use][:, None]
        vals = amp[w, use][:, None] * np.exp(-0.5 * z * z)
        ok = (idx >= 0) & (idx < n)
        courses[w] = np.bincount(idx[ok], weights=vals[ok], minlength=n)
    heart = courses.T @ vectors  # (n, 3)
    if spec.rhythm == "AFIB":
        f0 = spec.af_hz
        drift = np.cumsum(rng.normal(0, 0.02, n)) / np.sqrt(fs)  # slow frequency wander
        phase = 2 * np.pi * np.cumsum(f0 * (1 + drift)) / fs + rng.uniform(0, 2 * np.pi)
        t = np.arange(n) / fs
        env = spec.af_amp * (1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6)))
        f_wave = env * (np.sin(phase) + 0.35 * np.sin(2 * phase + 1.0))
        heart += np.outer(f_wave, np.array([-0.25, 0.6, 0.75]))
    return heart @ spec.leads  # (n, 8)


def _acquire(recorded: np.ndarray, spec: _Spec, rng: np.random.Generator, fs: int = BASE_FS) -> np.ndarray:
    """Background noise of every recording and the device's filters on the 8 recorded leads.

    Per electrode lead: baseline wander (respiration plus slow drift, cf. the MIT-BIH Noise
    Stress Test's "bw" record), band-limited muscle (EMG) noise, white amplifier noise, sometimes
    mains interference (50/60 Hz) and an electrode-motion transient ("em"). Then the device's
    band-pass (first-order high-pass at 0.05 or 0.5 Hz, second-order 150 Hz low-pass: AHA
    diagnostic bandwidth or the common monitoring high-pass), applied in the frequency domain.
    """
    n, leads = recorded.shape
    t = np.arange(n) / fs
    # sinusoidal parts (respiratory and slow baseline wander, mains) from one sin/cos basis: per lead
    # amplitude and phase, shared frequencies
    freqs = np.array([spec.resp_hz, *rng.uniform(0.05, 0.3, 2), spec.mains_hz])
    amps = np.concatenate([spec.bw_amp * rng.lognormal(0, 0.5, (3, leads)), np.full((1, leads), spec.mains_uv * 1e-3)])
    phase = rng.uniform(0, 2 * np.pi, (4, leads))
    arg = 2 * np.pi * freqs[None, :] * t[:, None]
    basis = np.concatenate([np.sin(arg), np.cos(arg)], axis=1)  # (n, 8)
    x = recorded + basis @ np.concatenate([amps * np.cos(phase), amps * np.sin(phase)])
    if spec.motion:
        lead, width = int(rng.integers(leads)), rng.uniform(0.2, 1.0)
        center = rng.uniform(1.0, DURATION_S + 1.0)
        x[:, lead] += rng.uniform(-0.4, 0.4) * np.exp(-0.5 * ((t - center) / (width / 2.355)) ** 2)
    spectrum = np.fft.rfft(x, axis=0)
    f = np.fft.rfftfreq(n, 1 / fs)
    # white amplifier noise and 20-80 Hz muscle noise, drawn as one shaped complex spectrum
    band = np.clip((f - 10) / 10, 0, 1) * np.clip((100 - f) / 20, 0, 1)
    emg = spec.emg_uv * 1e-3 * n / (2 * np.sqrt((band ** 2).sum())) * band  # time-domain sd emg_uv
    level = np.sqrt(emg ** 2 + (spec.white_uv * 1e-3) ** 2 * n / 2)  # sd white_uv
    spectrum += (rng.standard_normal(spectrum.shape) + 1j * rng.standard_normal(spectrum.shape)) * level[:, None]
    ratio = f / spec.highpass_hz
    h = ratio / np.sqrt(1 + ratio ** 2) / np.sqrt(1 + (f / 150.0) ** 4)
    return np.fft.irfft(spectrum * h[:, None], n=n, axis=0)


def _add_recording_problems(sig: np.ndarray, spec: _Spec, rng: np.random.Generator, fs: int = BASE_FS) -> None:
    n = sig.shape[0]
    t = np.arange(n) / fs
    for column, leads in spec.noise.items():
        for lead in leads:
            if column == "baseline_drift":
                f = rng.uniform(0.05, 0.5, 2)
                a = rng.uniform(0.15, 0.6, 2)
                sig[:, lead] += (a[:, None] * np.sin(2 * np.pi * f[:, None] * t + rng.uniform(0, 6, (2, 1)))).sum(0)
            elif column == "static_noise":
                sig[:, lead] += rng.normal(0.0, rng.uniform(0.02, 0.06), n)
                if rng.random() < 0.5:
                    sig[:, lead] += rng.uniform(0.02, 0.06) * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 6))
            elif column == "burst_noise":
                for _ in range(rng.integers(1, 4)):
                    length = int(rng.uniform(0.2, 1.2) * fs)
                    start = int(rng.integers(0, n - length))
                    burst = np.convolve(rng.normal(0, 1, length), np.ones(5) / 5, mode="same")
                    sig[start:start + length, lead] += rng.uniform(0.3, 1.0) * burst
            elif column == "electrodes_problems":  # electrode off: near-flat line with noise
                sig[:, lead] = 0.05 * sig[:, lead] + rng.normal(0.0, 0.01, n)


def render_record(spec: _Spec) -> np.ndarray:
    """(5000, 12) float64 signal at 500 Hz in mV for one record specification."""
    rng = np.random.default_rng(spec.seed)
    recorded = _acquire(_render_clean(spec, rng), spec, rng)
    pad = int(_PAD_S * BASE_FS)
    sig = recorded[pad:pad + DURATION_S * BASE_FS] @ _DERIVE  # III, aVR, aVL, aVF derived as devices do
    _add_recording_problems(sig, spec, rng)
    return sig


# --------------------------------------------------------------------------- PTB-XL layout
def record_name(ecg_id: int, fs: int) -> str:
    """PTB-XL's record path (no suffix) of ``ecg_id`` at 100 or 500 Hz, relative to the dataset root:
    ``records100/00000/00001_lr``, ``records500/01000/01234_hr`` (1000 records per folder)."""
    return f"records{fs}/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{'lr' if fs == 100 else 'hr'}"


def _to_digital(signal: np.ndarray) -> np.ndarray:
    """mV -> int16 at 1000 adu/mV (PTB-XL's gain), clipped to +-32767; NaN -> -32768 (format 16's NaN)."""
    d = np.round(np.asarray(signal, np.float64) * 1000.0)
    return np.where(np.isfinite(d), np.clip(d, -32767, 32767), -32768).astype(np.int16)


def write_wfdb(path: str | os.PathLike, signal: np.ndarray, fs: float, *, lead_names: Sequence[str] = LEADS,
               units: str = "mV", comments: Sequence[str] | None = None) -> None:
    """Write ``path``.hea/.dat (``path`` without suffix; folders are created) for a (samples, leads)
    ``signal`` in ``units``, as ``wfdb.wrsamp(..., fmt=['16']*n, adc_gain=[1000.]*n, baseline=[0]*n)``
    writes them, byte for byte (tests check it against wfdb), like PTB-XL's records.

    wfdb.wrsamp spends ~40 ms per call validating header fields through pandas, which alone
    would cost > 2.5 min for the 4000 files of the default synthetic dataset.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digital = _to_digital(signal)
    checksum = digital.astype(np.int64).sum(axis=0) % 65536
    lines = [f"{path.name} {digital.shape[1]} {fs:g} {digital.shape[0]}"]
    lines += [f"{path.name}.dat 16 1000.0(0)/{units} 16 0 {int(digital[0, j])} {int(checksum[j])} 0 {lead_names[j]}"
              for j in range(digital.shape[1])]
    lines += [f"# {c}" for c in comments or ()]
    write_plain(f"{path}.hea", "\n".join(lines) + "\n")
    write_plain(f"{path}.dat", digital.astype("<i2").tobytes())


def simple_signal(ecg_id: int, fs: int, duration: float = 10.0) -> np.ndarray:
    """A deterministic ECG-ish (samples, 12) signal in mV with 3 decimals (exact in format 16): sharp
    periodic peaks at 1-1.3 Hz, a slow baseline wave, leads scaled apart, offset by ``ecg_id`` uV."""
    t = np.arange(int(round(duration * fs))) / fs
    lead = np.arange(12)[None, :]
    hr = 1.0 + 0.05 * (ecg_id % 7)
    x = 0.8 * np.sin(2 * np.pi * hr * t[:, None] + 0.3 * lead) ** 15 + 0.05 * np.sin(2 * np.pi * 0.3 * t[:, None])
    x = x * (1 + 0.1 * lead) + 0.01 * ecg_id
    return np.round(x, 3)


def write_ptbxl_layout(
    dest: str | os.PathLike,
    meta: pd.DataFrame,
    signals: Callable[[int], Mapping[int, np.ndarray]],
    statements: pd.DataFrame | str | os.PathLike,
    *,
    sampling_rates: Sequence[int] = (100, 500),
    marker: str | None = None,
    n_jobs: int = 1,
    on_record: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a dataset in the PhysioNet PTB-XL 1.0.3 layout to ``dest`` and return its path.

    * ``meta``: one row per record, indexed by ``ecg_id``, columns among ``PTBXL_COLUMNS``
      (``scp_codes`` as dict strings, ``strat_fold`` 1-10, ...); missing ones are written empty,
      ``filename_lr``/``filename_hr`` default to ``record_name(ecg_id, 100/500)``;
    * ``signals(ecg_id)``: ``{fs: (samples, 12) signal in mV}`` holding every rate in
      ``sampling_rates`` (a subset of 100, 500); written with ``write_wfdb`` (leads I ... V6) to
      the record's ``filename_lr`` (100 Hz) / ``filename_hr`` (500 Hz);
    * ``statements``: ``scp_statements.csv``, a frame (written with ``to_csv``) or a file to copy;
    * ``marker``: text of a ``SYNTHETIC`` marker file (written first; None = none).

    ``n_jobs`` threads call ``signals`` and write; ``on_record(done, total)`` follows each record.
    ``ptbxl_database.csv`` is written last, so a crash never leaves a complete-looking table.
    """
    rates = tuple(int(r) for r in sampling_rates)
    if any(r not in _FILENAME_COLUMNS for r in rates):
        raise ValueError(f"sampling_rates must be a subset of (100, 500), got {sampling_rates!r}")
    unknown = [c for c in meta.columns if c not in PTBXL_COLUMNS]
    if unknown or meta.index.name != "ecg_id":
        raise ValueError(f"meta must be indexed by ecg_id with columns among PTBXL_COLUMNS; unknown: {unknown}")
    meta = meta.copy()
    for fs, column in _FILENAME_COLUMNS.items():
        if column not in meta.columns:
            meta[column] = [record_name(int(i), fs) for i in meta.index]
    meta = meta.reindex(columns=list(PTBXL_COLUMNS))
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    if marker is not None:
        write_plain(root / "SYNTHETIC", marker)
    paths = {fs: dict(zip(meta.index, meta[_FILENAME_COLUMNS[fs]])) for fs in rates}

    def write(ecg_id) -> None:
        signal = signals(int(ecg_id))
        for fs in rates:
            write_wfdb(root / paths[fs][ecg_id], signal[fs], fs)

    with ThreadPoolExecutor(max_workers=max(1, int(n_jobs))) as pool:
        for done, _ in enumerate(pool.map(write, meta.index), 1):
            if on_record is not None:
                on_record(done, len(meta))
    if isinstance(statements, pd.DataFrame):
        write_plain(root / "scp_statements.csv", statements.to_csv())
    else:
        write_plain(root / "scp_statements.csv", Path(statements).read_bytes())
    write_plain(root / "ptbxl_database.csv", meta.to_csv())
    return root


def _downsample(sig: np.ndarray, fs: int) -> np.ndarray:
    """Fourier resampling from 500 Hz to ``fs`` with a raised-cosine low-pass from 0.8 to 1.0 x Nyquist.

    The straight line through the end points is removed first (and added back), so baseline
    drift does not wrap around; faster than ``scipy.signal.resample_poly`` here.
    """
    n = sig.shape[0]
    m = n * fs // BASE_FS
    line = sig[:1] + (sig[-1:] - sig[:1]) * (np.arange(n) / (n - 1))[:, None]
    spec = np.fft.rfft(sig - line, axis=0)[: m // 2 + 1]
    f = np.arange(m // 2 + 1) / (m // 2)  # fraction of the new Nyquist frequency
    taper = np.where(f <= 0.8, 1.0, 0.5 * (1 + np.cos(np.pi * np.clip((f - 0.8) / 0.2, 0, 1))))
    out = np.fft.irfft(spec * taper[:, None], n=m, axis=0) * (m / n)
    return out + line[:: BASE_FS // fs][:m]


def _render(spec: _Spec, sampling_rates: Sequence[int]) -> dict[int, np.ndarray]:
    sig = render_record(spec)
    return {fs: sig if fs == BASE_FS else _downsample(sig, fs) for fs in sampling_rates}


# --------------------------------------------------------------------------- metadata
def noise_leads(text) -> list[str]:
    """Leads named by a PTB-XL noise column value: ", I-AVR,", ", V1,V3, ", "alles" (all) or NaN (none)."""
    if not isinstance(text, str) or not text.strip(" ,"):
        return []
    upper = [lead.upper() for lead in LEADS]
    out: list[str] = []
    for token in (tok.strip().upper() for tok in text.split(",")):
        if not token:
            continue
        if token == "ALLES":
            return list(LEADS)
        if "-" in token:
            a, b = token.split("-", 1)
            if a in upper and b in upper:
                out += LEADS[upper.index(a):upper.index(b) + 1]
        elif token in upper:
            out.append(LEADS[upper.index(token)])
    return list(dict.fromkeys(out))


def _noise_text(rng: np.random.Generator) -> tuple[str, list[int]]:
    r = rng.random()
    if r < 0.3:
        return ", alles, ", list(range(12))
    if r < 0.75:
        a = int(rng.integers(0, 11))
        b = int(rng.integers(a + 1, min(a + 6, 12)))
        return f", {LEADS[a]}-{LEADS[b]}, ", list(range(a, b + 1))
    idx = sorted(rng.choice(12, size=int(rng.integers(1, 3)), replace=False).tolist())
    return ", " + ",".join(LEADS[i] for i in idx) + ", ", idx


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def _pick(rng: np.random.Generator, items: Sequence, weights: Sequence[float] | None = None):
    """One item (weights need not sum to 1); a fast scalar ``rng.choice``."""
    if weights is None:
        return items[int(rng.integers(len(items)))]
    cum = np.cumsum(weights)
    return items[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(items) - 1)]


def _draw_noise(rng: np.random.Generator) -> dict[str, tuple[str, list[int]]]:
    if rng.random() >= 0.22:
        return {}
    out = {}
    for column, p in (("static_noise", 0.65), ("baseline_drift", 0.35), ("burst_noise", 0.15)):
        if rng.random() < p:
            out[column] = _noise_text(rng)
    if rng.random() < 0.04:
        lead = int(rng.integers(0, 12))
        out["electrodes_problems"] = (f", {LEADS[lead]}, ", [lead])
    if not out:
        out["static_noise"] = _noise_text(rng)
    return out


def _draw_ectopics(rng: np.random.Generator, rhythm: str) -> tuple[tuple[tuple[int, float], ...], object]:
    """Premature beats of one record: ((kind, coupling), ...) and its ``extra_beats`` text (PTB-XL's
    "SVES" for supraventricular, "nES" for n ventricular extrasystoles; NaN = none). Sinus records:
    PAC (coupling 0.6-0.8 RR) in 8 %, PVC (0.45-0.7 RR) in 6 %; AFIB: PVCs in 6 %."""
    out = []
    if rhythm in ("SR", "SBRAD", "STACH") and rng.random() < 0.08:
        out += [(_PAC, rng.uniform(0.6, 0.8)) for _ in range(1 + int(rng.random() < 0.25))]
    if rhythm != "SARRH" and rng.random() < 0.06:
        out += [(_PVC, rng.uniform(0.45, 0.7)) for _ in range(1 + int(rng.random() < 0.25))]
    n_pvc = sum(k == _PVC for k, _ in out)
    text = ", ".join((["SVES"] if any(k == _PAC for k, _ in out) else []) + ([f"{n_pvc}ES"] if n_pvc else []))
    return tuple(out), text or np.nan


def _hrv_median(hr: float) -> float:
    """Median RR coefficient of variation of sinus rhythm at ``hr`` bpm (``_HRV_CV``)."""
    (r0, r1), (c0, c1) = _HRV_CV
    return float(np.exp(np.interp(hr, (r0, r1), (np.log(c0), np.log(c1)))))


def _draw_rate(rng: np.random.Generator, rhythm: str, pat: dict) -> tuple[float, float]:
    """Heart rate (bpm) of one record and its respiratory sinus arrhythmia (relative RR amplitude).

    Sinus records draw their own class thresholds (``_BRADY_BPM``, ``_TACHY_BPM``) and a rate inside
    their class; women +2 bpm, -0.4 bpm per decade of age. SARRH records draw their sinus arrhythmia
    criterion between 10 % of the cycle (or 120 ms if lower) and 160 ms and a respiratory RR swing
    (peak to peak) of 1-2.2x that criterion; other sinus records have the HRV spectrum's only."""
    shift = (2.0 if pat["sex"] == 1 else 0.0) - 0.04 * (pat["age"] - 60)
    if rhythm == "AFIB":
        return _clip(rng.uniform(*_AFIB_BPM) + shift, *_AFIB_BPM), 0.0
    brady, tachy = rng.uniform(*_BRADY_BPM), rng.uniform(*_TACHY_BPM)
    lo, hi = {"SBRAD": (_SINUS_BPM[0], brady), "STACH": (tachy, _SINUS_BPM[1])}.get(rhythm, (brady, tachy))
    hr = _clip(rng.uniform(lo, hi) + shift, lo, hi)
    rr = 60.0 / hr
    criterion = rng.uniform(min(0.10 * rr, _SARRH_PP_S[0]), _SARRH_PP_S[1])
    if rhythm != "SARRH":  # their respiratory RR variation is the HRV spectrum's HF peak alone
        return hr, 0.0
    return hr, criterion * rng.uniform(1.0, 2.2) / (2.0 * rr)  # RR = rr (1 + a sin): peak-to-peak 2 a rr


def _draw_pathology(rng: np.random.Generator, age: float, sex: int) -> list[str]:
    """Diagnostic + form codes of one patient (empty list = healthy)."""
    age_factor = _clip(0.35 + age / 70, 0.5, 1.7)
    codes: list[str] = []
    for cls, p in _PATHOLOGY_P.items():
        p = p * age_factor * ((1.3 if sex == 0 else 0.7) if cls == "MI" else 1.0)
        if rng.random() < p:
            group = _PATHOLOGY[cls]
            w = [g[1] for g in group]
            code, _, forms = _pick(rng, group, w)
            codes.append(code)
            codes += [f for f, pf in forms if rng.random() < pf]
    # incompatible pairs: the left/right bundle branch blocks and the two axis shifts
    if "CLBBB" in codes:
        codes = [c for c in codes if c not in ("IRBBB", "CRBBB", "LAFB")]
    if "LAFB" in codes and "RVH" in codes:
        codes.remove("RVH")
    return codes


def _scp_codes(rng: np.random.Generator, codes: Sequence[str], rhythm: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in codes:
        s = _statement(c)
        if c == "NORM":
            out[c] = 100.0 if rng.random() < 0.9 else 80.0
        elif s.diagnostic:
            out[c] = _pick(rng, _LIKELIHOODS, _LIKELIHOOD_P)
        else:
            out[c] = 0.0
    out[rhythm] = 0.0
    return out


def _assign_folds(rng: np.random.Generator, patient_of: np.ndarray, labels: list[set[str]], n_folds: int = 10) -> np.ndarray:
    """Patient-wise folds, greedily balancing record counts per label (iterative stratification)."""
    patients = np.unique(patient_of)
    members = {p: np.flatnonzero(patient_of == p) for p in patients}
    all_labels = sorted(set().union(*labels))
    col = {lab: i for i, lab in enumerate(all_labels)}
    totals = np.zeros(len(all_labels))
    for lab in labels:
        for x in lab:
            totals[col[x]] += 1
    counts = np.zeros((n_folds, len(all_labels)))
    sizes = np.zeros(n_folds)
    target = len(patient_of) / n_folds
    fold_of = np.zeros(len(patient_of), dtype=np.int64)
    order = rng.permutation(patients)
    # rarest label first, then larger patients first: the usual iterative-stratification order
    rarity = {p: min((totals[col[x]] for i in members[p] for x in labels[i]), default=np.inf) for p in order}
    order = sorted(order, key=lambda p: (rarity[p], -len(members[p])))
    for p in order:
        vec = np.zeros(len(all_labels))
        for i in members[p]:
            for x in labels[i]:
                vec[col[x]] += 1
        score = (counts @ (vec / np.maximum(totals, 1))) * n_folds + sizes / target
        f = int(np.argmin(score + 1e-9 * np.arange(n_folds)))
        counts[f] += vec
        sizes[f] += len(members[p])
        fold_of[members[p]] = f + 1
    return fold_of


def _draw_dataset(n_records: int, seed: int) -> tuple[pd.DataFrame, list[_Spec]]:
    rng = np.random.default_rng(seed)
    # patients: ~10 % have 2-3 records
    n_records_per = []
    while sum(n_records_per) < n_records:
        n_records_per.append(1 if rng.random() < 0.9 else int(rng.integers(2, 4)))
    n_records_per[-1] -= sum(n_records_per) - n_records
    n_patients = len(n_records_per)
    patient_ids = np.sort(rng.choice(np.arange(1, 22000), size=n_patients, replace=False)).astype(float)
    patients = []
    for pid, k in zip(patient_ids, n_records_per):
        sex = int(rng.random() < 0.48)
        age = _clip(round(rng.normal(60, 17)), 18, 95)
        patients.append({
            "patient_id": pid, "n": k, "sex": sex, "age": age,
            "height": np.nan if rng.random() < 0.68 else float(np.round(rng.normal(176 if sex == 0 else 164, 7))),
            "weight": np.nan if rng.random() < 0.57 else float(np.round(rng.normal(82 if sex == 0 else 70, 13))),
            "codes": _draw_pathology(rng, age, sex), "morph": _patient_morph(rng),
            "stadium": _pick(rng, _STADIA),
        })
    rhythm_counts = {r: int(round(p * n_records)) for r, p in RHYTHM_MIX.items() if r != "SR"}
    rhythms = np.array(["SR"] * (n_records - sum(rhythm_counts.values()))
                       + [r for r, c in rhythm_counts.items() for _ in range(c)])
    rhythms = rhythms[rng.permutation(n_records)]

    # recording dates; ecg_id follows date order like in PTB-XL
    start = np.datetime64("1984-01-01T08:00:00")
    span = int((np.datetime64("2001-06-30T18:00:00") - start).astype(np.int64))
    patient_of = np.repeat(np.arange(n_patients), n_records_per)
    first = rng.integers(0, span - 3 * 10**8, n_patients)
    offsets = np.concatenate([np.sort(rng.integers(0, 3 * 10**8, k)) if k > 1 else [0] for k in n_records_per])
    seconds = first[patient_of] + offsets
    order = np.argsort(seconds, kind="stable")
    patient_of, seconds = patient_of[order], seconds[order]

    rows, specs, labels = [], [], []
    for i in range(n_records):
        ecg_id = i + 1
        pat = patients[patient_of[i]]
        rhythm = str(rhythms[i])
        codes = [c for c in pat["codes"] if not (rhythm == "AFIB" and c in _P_WAVE_CODES)]
        if rhythm == "AFIB" and not any(_statement(c).diagnostic for c in codes) and rng.random() < 0.5:
            codes.append(_pick(rng, ("NDT", "ISC_")))
        if not any(_statement(c).diagnostic for c in codes) and rhythm != "AFIB":
            codes = ["NORM"] + (["LVOLT"] if rng.random() < 0.05 else [])
        if any(c in codes for c in ("ISC_", "ISCAL", "ISCIN")) and "STD_" not in codes and rng.random() < 0.3:
            codes.append("STD_")
        if "NST_" in codes and pat["morph"]["nst"] < 0 and "STD_" not in codes and rng.random() < 0.5:
            codes.append("STD_")
        if "NST_" in codes and pat["morph"]["nst"] > 0 and rng.random() < 0.5:
            codes.append("STE_")
        if "NDT" in codes and "INVT" not in codes:  # NDT flattens (LOWT) or inverts (INVT) T
            if pat["morph"]["flat_t"] < 0:
                codes.append("INVT")
            elif rng.random() < 0.5:
                codes.append("LOWT")
        code_set = set(codes)
        waves, qtc, axis = _morphology(pat, code_set, rhythm)
        hr, resp_amp = _draw_rate(rng, rhythm, pat)
        noise = _draw_noise(rng)
        ectopics, extra = _draw_ectopics(rng, rhythm)
        codes += [c for c in ("PAC", "PVC") if any(k == (_PAC if c == "PAC" else _PVC) for k, _ in ectopics)]
        sinus = rhythm != "AFIB"
        spec = _Spec(
            ecg_id=ecg_id, rhythm=rhythm, hr=hr, waves=waves, qtc=qtc, leads=pat["morph"]["leads"],
            resp_amp=resp_amp, resp_hz=rng.uniform(0.25, 0.4) if rhythm == "SARRH" else rng.uniform(0.2, 0.4),
            hrv_cv=_clip(rng.lognormal(np.log(_hrv_median(hr)), 0.4), 0.004, 0.045) if sinus else 0.0,
            lf_hf=_clip(rng.lognormal(np.log(1.5), 0.5), 0.3, 5.0),
            resp_qrs=rng.uniform(0.02, 0.1), beat_jitter=rng.uniform(0.01, 0.05),
            ectopics=ectopics, ectopic_waves=_ectopic_waves(rng, pat["morph"]["gain"]) if ectopics else [],
            af_cv=rng.uniform(0.12, 0.35), af_amp=_clip(rng.lognormal(np.log(0.06), 0.5), 0.02, 0.2),
            af_hz=rng.uniform(4.5, 8.5),
            bw_amp=_clip(rng.lognormal(np.log(0.03), 0.6), 0.005, 0.2), white_uv=rng.uniform(1.5, 5.0),
            emg_uv=_clip(rng.lognormal(np.log(4.0), 0.6), 1.0, 20.0),
            mains_uv=rng.uniform(2.0, 20.0) if rng.random() < 0.3 else 0.0, mains_hz=50.0 if rng.random() < 0.7 else 60.0,
            motion=bool(rng.random() < 0.08), highpass_hz=0.05 if rng.random() < 0.6 else 0.5,
            noise={col: leads for col, (_, leads) in noise.items()}, seed=(seed, ecg_id),
        )
        specs.append(spec)
        scp = _scp_codes(rng, codes, rhythm)
        labels.append({rhythm} | {_statement(c).diagnostic_class for c in codes if _statement(c).diagnostic})
        report = ". ".join([_statement(rhythm).description] + [_statement(c).description.lower() for c in codes])
        mi = any(_statement(c).diagnostic_class == "MI" for c in codes)
        autogen = bool(rng.random() < 0.25)
        rows.append({
            "ecg_id": ecg_id, "patient_id": pat["patient_id"], "age": pat["age"], "sex": pat["sex"],
            "height": pat["height"], "weight": pat["weight"],
            "nurse": np.nan if rng.random() < 0.7 else float(rng.integers(0, 12)),
            "site": float(rng.integers(0, 51)), "device": _pick(rng, _DEVICES),
            "recording_date": str(start + np.timedelta64(int(seconds[i]), "s")).replace("T", " "),
            "report": report + ".", "scp_codes": repr(scp),
            "heart_axis": _axis_label(axis) if rng.random() < 0.6 else np.nan,
            "infarction_stadium1": pat["stadium"] if mi else np.nan,
            "infarction_stadium2": ("Stadium III" if rng.random() < 0.5 else "Stadium II") if mi and rng.random() < 0.1 else np.nan,
            "validated_by": np.nan if rng.random() < 0.43 else float(rng.integers(0, 13)),
            "second_opinion": bool(rng.random() < 0.02), "initial_autogenerated_report": autogen,
            "validated_by_human": bool(rng.random() < 0.73),
            **{col: noise[col][0] if col in noise else np.nan for col in _NOISE_COLUMNS},
            "extra_beats": extra, "pacemaker": np.nan,
            "filename_lr": record_name(ecg_id, 100), "filename_hr": record_name(ecg_id, 500),
        })
    meta = pd.DataFrame(rows).set_index("ecg_id")
    meta["strat_fold"] = _assign_folds(rng, patient_of, labels)
    meta.loc[meta["strat_fold"] >= 9, "validated_by_human"] = True  # PTB-XL: folds 9-10 are human-validated
    meta["sex"] = meta["sex"].astype(np.int64)
    return meta[list(PTBXL_COLUMNS)], specs


# --------------------------------------------------------------------------- public API
_README = """\
SYNTHETIC DATA - NOT PTB-XL, NOT REAL ECGS.

This folder has the layout of PTB-XL 1.0.3 (PhysioNet) so that ecg_keras can run every step
without downloading anything, but every record was generated by
ecg_keras.datasets.synthetic.generate_synthetic_ptbxl (ecg_keras {package}, generator version
{version}) with n_records={n}, seed={seed}, sampling_rates={rates}:

    python -c "from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl as g; g('<dest>', n_records={n}, seed={seed}, sampling_rates={rates})"

Signals are sums of Gaussian P-QRS-T waves projected onto the 12 leads; rhythm labels (SR,
SBRAD, STACH, SARRH, AFIB), several diagnostic/form statements and the noise columns are
rendered in the signals. See the module docstring for what is modelled. Model scores on this
data say nothing about real ECGs. scp_statements.csv lists the 71 real SCP statements
(diagnostic hierarchy of PTB-XL, CC-BY 4.0); only these codes are used in ptbxl_database.csv:
{codes}.
"""


def generate_synthetic_ptbxl(
    dest: str | os.PathLike,
    n_records: int = 2000,
    seed: int = 0,
    sampling_rates: Sequence[int] = (100, 500),
    n_jobs: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a synthetic dataset in the PTB-XL 1.0.3 layout to ``dest`` and return its path.

    ``dest`` must be empty, absent, or an earlier synthetic dataset (it holds a ``SYNTHETIC``
    file; its record folders are replaced). ``sampling_rates`` is a subset of (100, 500);
    records are rendered at 500 Hz and decimated to 100 Hz. ``filename_lr``/``filename_hr``
    are always filled, files exist only for the requested rates. ``n_jobs`` threads render and
    write records (default: up to 2); the output does not depend on it.
    """
    rates = tuple(sorted({int(r) for r in sampling_rates}))
    if not rates or any(r not in (100, 500) for r in rates):
        raise ValueError(f"sampling_rates must be a non-empty subset of (100, 500), got {sampling_rates!r}")
    if int(n_records) < 10:
        raise ValueError(f"n_records must be >= 10 (one patient per fold at least), got {n_records}")
    root = Path(dest)
    if root.exists() and any(root.iterdir()):
        if not (root / "SYNTHETIC").exists():
            raise FileExistsError(f"{root} is not empty and holds no SYNTHETIC marker; refusing to overwrite it")
        for sub in ("records100", "records500"):
            shutil.rmtree(root / sub, ignore_errors=True)
    started = time.perf_counter()
    meta, specs = _draw_dataset(int(n_records), int(seed))
    by_id = {spec.ecg_id: spec for spec in specs}
    step = max(1, len(specs) // 10)

    def on_record(done: int, total: int) -> None:
        if progress and (done % step == 0 or done == total):
            print(f"\rsynthetic PTB-XL: {done}/{total} records ({time.perf_counter() - started:.0f} s)",
                  end="", file=sys.stderr, flush=True)

    write_ptbxl_layout(
        root, meta, lambda ecg_id: _render(by_id[ecg_id], rates), statements_frame(), sampling_rates=rates,
        marker=f"synthetic PTB-XL-layout dataset: ecg_keras.datasets.synthetic generator {GENERATOR_VERSION}, "
               f"n_records={int(n_records)}, seed={int(seed)}\n",
        n_jobs=max(1, min(2, os.cpu_count() or 1) if n_jobs is None else int(n_jobs)), on_record=on_record)
    if progress:
        print(file=sys.stderr)
    from ecg_keras.version import __version__

    used = sorted({c for s in meta["scp_codes"] for c in ast.literal_eval(s)})
    write_plain(root / "README.txt", _README.format(
        package=__version__, version=GENERATOR_VERSION, n=int(n_records), seed=int(seed), rates=rates,
        codes=", ".join(used)))
    return root
