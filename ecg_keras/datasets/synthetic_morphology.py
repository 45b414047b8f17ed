"""Synthetic PTB-XL, record specification: the lead field, one patient's beat morphology for its
statements and the :class:`Spec` a record is rendered from (see ``ecg_keras.datasets.synthetic``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

# Beat kinds: sinus, premature atrial (conducted normally, conducted with right-bundle aberrancy,
# or blocked in the AV node: a P wave with no QRS) and premature ventricular.
NORMAL, PAC, PVC, PAC_ABERRANT, PAC_BLOCKED = 0, 1, 2, 3, 4
PAC_KINDS = (PAC, PAC_ABERRANT, PAC_BLOCKED)
NO_P_WAVE_RHYTHMS = frozenset({"AFIB", "AFLT"})  # atrial activity other than the sinus P wave
# Atrial flutter with variable AV block: share of each conduction ratio n:1 (docs/SYNTHETIC.md, v5)
FLUTTER_VARIABLE_BLOCK = {2: 0.5, 3: 0.15, 4: 0.35}

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
DERIVE = np.zeros((8, 12))
DERIVE[0, [0, 2, 3, 4, 5]] = [1.0, -1.0, -0.5, 1.0, -0.5]
DERIVE[1, [1, 2, 3, 4, 5]] = [1.0, 1.0, -0.5, -0.5, 1.0]
DERIVE[2:, 6:] = np.eye(6)


def clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


@dataclass
class Wave:
    offset: float  # s from the R peak (from the T peak when ``qt`` is True)
    sigma: float  # s
    vector: np.ndarray  # (3,) mV
    qt: bool = False  # moves with the RR-dependent QT interval
    kinds: tuple[int, ...] = (NORMAL, PAC, PAC_ABERRANT)  # beat kinds that have this wave


class Ectopic(NamedTuple):
    """One premature event of a record: ``beats`` (1, or 2 for a couplet) beats of ``kind``, each
    ``coupling`` (fraction of the preceding RR) after the one before it. PVCs: ``interpolated``
    between two sinus beats, else a full compensatory pause; PACs reset the sinus node, which
    fires again one cycle plus ``sact`` (sinoatrial conduction time) in and out later."""

    kind: int
    coupling: float
    beats: int = 1
    interpolated: bool = False
    sact: float = 0.0


@dataclass
class Flutter:
    """Atrial flutter of one record: the circuit's rate, the AV block and the F-wave (see
    ``ecg_keras.datasets.synthetic._flutter_rr`` and ``_flutter_waves``)."""

    atrial_bpm: float  # F waves per minute
    block: int  # conduction ratio n (n:1), 0 = variable block
    amp: float  # mV, F-wave peak-to-peak along its heart vector
    phase: float  # where in the F-wave cycle (0-1) every conducted QRS falls: fixed for a record
    typical: bool  # counter-clockwise cavotricuspid (negative in II, III, aVF) or clockwise (positive)
    vector: np.ndarray  # (3,) unit heart vector of the F wave

    def ventricular_bpm(self) -> float:
        """Mean ventricular rate: atrial rate / (block ratio, or its mean under variable block)."""
        ratios = FLUTTER_VARIABLE_BLOCK
        return self.atrial_bpm / (self.block or sum(r * p for r, p in ratios.items()) / sum(ratios.values()))


@dataclass
class Spec:
    """Everything needed to render one record; drawn in the main thread, rendered anywhere."""

    ecg_id: int
    rhythm: str
    hr: float
    waves: list[Wave]
    qtc: float
    resp_amp: float
    resp_hz: float
    leads: np.ndarray  # (3, 8) heart vector -> I, II, V1..V6 (this patient's electrode placement)
    hrv_cv: float = 0.0  # sd of the RR modulation / mean RR
    lf_hf: float = 1.5
    resp_qrs: float = 0.05  # respiratory modulation of the wave amplitudes
    beat_jitter: float = 0.03  # independent beat-to-beat amplitude variation of each wave
    ectopics: tuple[Ectopic, ...] = ()
    ectopic_waves: list[Wave] = field(default_factory=list)
    af_cv: float = 0.0
    af_amp: float = 0.0
    af_hz: float = 6.0
    flutter: Flutter | None = None
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


def morphology(patient: dict, codes: set[str], rhythm: str) -> tuple[list[Wave], float, float]:
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
    waves: list[Wave] = []

    if rhythm not in NO_P_WAVE_RHYTHMS:
        p_vec = m["p_gain"] * np.array([0.10, 0.15, 0.03])
        p_off = -pr + 0.01
        if "LAO/LAE" in codes:  # broad bifid P, negative terminal part in V1
            waves += [Wave(p_off - 0.025, 0.022, 0.7 * p_vec, kinds=(0,)),
                      Wave(p_off + 0.03, 0.022, 0.7 * p_vec + np.array([0.0, 0.0, -0.09]), kinds=(0,))]
        else:
            waves.append(Wave(p_off, 0.022, p_vec, kinds=(0,)))

    if "CLBBB" in codes:  # septum activated right-to-left: no septal q, broad notched R, discordant T
        r_vec = r_amp * _unit(axis - 10, -0.9)
        waves += [Wave(-0.02, 0.024, 0.75 * r_vec), Wave(0.04, 0.026, 0.75 * r_vec)]
        t_vec = -0.9 * gain * np.array([0.25, 0.12, -0.25])
        s_vec = 0 * s_vec
    else:
        if "RVH" in codes:
            r_vec = r_vec + gain * np.array([0.0, 0.0, 0.9])
        if "ASMI" in codes:
            q_vec = 0 * q_vec
            waves.append(Wave(-0.018, 0.013, gain * np.array([-0.05, 0.0, -0.55])))
        else:
            waves.append(Wave(-0.022, 0.008, q_vec))
        if "AMI" in codes:
            waves.append(Wave(-0.018, 0.013, gain * np.array([0.15, 0.0, -0.55])))
        if "IMI" in codes or "ILMI" in codes:
            lateral = -0.35 if "ILMI" in codes else 0.0
            waves.append(Wave(-0.02, 0.014, gain * np.array([lateral, -0.55, 0.0])))
            t_vec = t_vec * np.array([1.0, -0.8, 1.0])
        waves.append(Wave(0.0, r_sigma, r_vec))
        if "CRBBB" in codes or "IRBBB" in codes:  # late rightward-anterior forces: rSR' in V1
            k = 1.0 if "CRBBB" in codes else 0.45
            waves.append(Wave(0.065 if k == 1.0 else 0.045, 0.02, k * gain * np.array([-0.35, -0.05, 0.5])))
            if k == 1.0:
                t_vec = t_vec * np.array([1.0, 1.0, -0.6])
        waves.append(Wave(s_off, 0.01, s_vec))

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
        waves.append(Wave(0.12, 0.04, st))
    # asymmetric T: slow upstroke (broad leading Gaussian) and faster downstroke
    waves += [Wave(-0.045, 0.05, 0.45 * t_vec, qt=True), Wave(0.0, 0.04, 0.8 * t_vec, qt=True)]
    if "LVOLT" in codes:  # attenuation (e.g. effusion, obesity) shrinks every wave
        for w in waves:
            w.vector = 0.4 * w.vector
    return waves, qtc, float(axis)


def ectopic_waves(rng: np.random.Generator, gain: float) -> list[Wave]:
    """Waves of this patient's premature beats. A PAC's ectopic P wave (the focus sets its axis:
    half low-atrial, negative in the inferior leads, half elsewhere in the atria) ahead of the
    normal QRS, plus right-bundle-branch-like terminal forces when conducted with aberrancy; a
    PVC's broad QRS (~140 ms) with a discordant T and no P."""
    p_axis = rng.uniform(-110, -40) if rng.random() < 0.5 else rng.uniform(-30, 110)
    p_vec = rng.uniform(0.1, 0.18) * _unit(p_axis, rng.uniform(-0.4, 0.4))
    qrs = gain * rng.uniform(1.2, 2.2) * _unit(rng.uniform(-120, 200), rng.uniform(-0.8, 0.8))
    return [Wave(-rng.uniform(0.12, 0.2), 0.02, p_vec, kinds=PAC_KINDS),
            Wave(0.06, 0.02, gain * np.array([-0.35, -0.05, 0.5]), kinds=(PAC_ABERRANT,)),
            Wave(-0.02, rng.uniform(0.022, 0.03), 0.7 * qrs, kinds=(PVC,)),
            Wave(0.035, rng.uniform(0.022, 0.03), 0.5 * qrs, kinds=(PVC,)),
            Wave(0.32, 0.06, -0.35 * qrs, kinds=(PVC,))]


def _electrodes(rng: np.random.Generator) -> np.ndarray:
    """(3, 8) lead field of one patient for I, II, V1..V6: precordial electrodes placed within about
    +-1 intercostal space / a few cm (angle sd 7 degrees, gain sd ~20 %), chest size and skin."""
    chest = [g * rng.lognormal(0, 0.2) * np.array([np.cos(a), 0.08, np.sin(a)])
             for a, g in zip(_V_ANGLES + np.deg2rad(rng.normal(0, 7, 6)), _V_GAINS)]
    limb = _LEAD_MATRIX[:, :2] * rng.lognormal(0, 0.1)
    return np.concatenate([limb, np.stack(chest, axis=1)], axis=1)


def axis_label(axis: float) -> str:
    if axis < -45:
        return "ALAD"
    if axis < -30:
        return "LAD"
    if axis <= 90:
        return "MID"
    if axis <= 120:
        return "RAD"
    return "ARAD"


def patient_morph(rng: np.random.Generator) -> dict:
    return {
        "gain": clip(rng.lognormal(0.0, 0.25), 0.5, 1.8), "axis": clip(rng.normal(50, 25), -28, 98),
        "qrs_sigma": rng.uniform(0.0085, 0.0125), "leads": _electrodes(rng),
        "lafb_axis": rng.uniform(-80, -48), "rvh_axis": rng.uniform(100, 150), "r_z": rng.uniform(-0.38, -0.18),
        "pr": rng.uniform(0.13, 0.18), "avb_pr": rng.uniform(0.22, 0.32), "qtc": rng.uniform(0.38, 0.43),
        "long_qtc": rng.uniform(0.48, 0.55), "t_gain": rng.uniform(0.8, 1.3), "p_gain": rng.uniform(0.8, 1.2),
        "st_dep": rng.uniform(0.08, 0.2), "nst": (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.04, 0.08),
        "flat_t": rng.uniform(-0.15, 0.3), "strain": bool(rng.random() < 0.5),
    }
