"""Synthetic PTB-XL, metadata drawing: rhythm, rate, pathology, noise, demographics and folds of
every record, and the :class:`~ecg_keras.datasets.synthetic_morphology.Spec` each one is rendered
from (see ``ecg_keras.datasets.synthetic``). The draws happen in one fixed order from one seed."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ecg_keras.datasets.base import LEADS
from ecg_keras.datasets.ptbxl_writer import PTBXL_COLUMNS, record_name
from ecg_keras.datasets.synthetic_morphology import (NO_P_WAVE_RHYTHMS, PAC, PAC_ABERRANT, PAC_BLOCKED, PAC_KINDS, PVC,
                                                     Ectopic, Flutter, Spec, axis_label, clip, ectopic_waves,
                                                     morphology, patient_morph)
from ecg_keras.statements import get as _statement

# Rhythm statements actually rendered, with their exact share of the records.
# AFLT is rare in PTB-XL (73 of 21,837 records); 5 % gives a 2,000-record demo set ~100 flutter
# records (~80 for training) and leaves every other rhythm's share as it was (taken from SR).
RHYTHM_MIX = {"SR": 0.47, "SBRAD": 0.12, "STACH": 0.12, "SARRH": 0.12, "AFIB": 0.12, "AFLT": 0.05}
# Published definitions of the sinus rate classes differ (docs/SYNTHETIC.md section 4): tachycardia
# above 100 bpm (the traditional 60-100 normal range) or above 90 (Spodick et al. 1992), bradycardia
# below 60 or below 50 (Spodick; Kusumoto et al. 2019). Each sinus record draws its own thresholds
# from these spans, so the probability of a label rises smoothly with the rate.
_TACHY_BPM = (90.0, 100.0)
_BRADY_BPM = (50.0, 60.0)
_SINUS_BPM = (40.0, 150.0)  # sinus rates rendered (SBRAD from 40, STACH up to 150)
_AFIB_BPM = (55.0, 150.0)
# Atrial flutter (docs/SYNTHETIC.md, generator 5): atrial rate 240-340/min; AV conduction 2:1 (the
# usual untreated ratio), 4:1, rarely 3:1, or variable; typical counter-clockwise circuit in most.
_FLUTTER_BPM = (240.0, 340.0)
_FLUTTER_BLOCK = ((2, 0.5), (4, 0.2), (3, 0.05), (0, 0.25))  # (n of n:1, 0 = variable; share)
_FLUTTER_TYPICAL_P = 0.85
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
_P_WAVE_CODES = {"1AVB", "LPR", "LAO/LAE"}  # meaningless without P waves (AFIB, AFLT)
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
_NOISE_COLUMNS = ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems")


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


# Ectopy (docs/SYNTHETIC.md section 6). Share of records with PACs (sinus rate classes) and with
# PVCs (sinus rate classes, AFIB and AFLT); SARRH keeps a purely sinus RR series.
_ECTOPY_P = {PAC: 0.08, PVC: 0.06}
# Ectopic burden (premature / all beats) of a record that shows ectopy: uniform over 1-25 %. The
# population's burden of frequent ectopy spreads over orders of magnitude (about log-uniform, up
# to the ~24 % of PVC cardiomyopathy, Baman et al. 2010); a 10-s record catches ectopy with a
# probability proportional to the burden, which makes the burden of the records that show it
# about uniform. The first premature beat is given, the others occur at the burden's rate.
_BURDEN = (0.01, 0.25)
_COUPLET_P = 0.1  # a premature beat followed by a second one of its kind
# PVC coupling interval (s): a record's focus fires at a fixed coupling, mean 0.44-0.47 s, sd
# 0.07-0.08 s between patients (Holter, non-parasystolic PVCs); its beats vary by < 80 ms.
_PVC_COUPLING_S, _PVC_COUPLING_SD, _PVC_JITTER_S = 0.45, 0.075, 0.02
_INTERPOLATED_P = 0.3  # of the PVCs at sinus cycles >= 0.9 s (interpolation needs a slow rate)
_PAC_COUPLING = (0.5, 0.85)  # fraction of the sinus cycle; the earliest are aberrant or blocked
_SACT_S = (0.04, 0.1)  # sinoatrial conduction time (premature atrial stimulation, normal subjects)


def _draw_ectopics(rng: np.random.Generator, rhythm: str, hr: float) -> tuple[tuple[Ectopic, ...], object]:
    """Premature events of one record and its ``extra_beats`` text (PTB-XL's "SVES" for
    supraventricular, "nES" for n ventricular extrasystoles; NaN = none).

    Each kind present draws a burden (``_BURDEN``) and 1 + Binomial(beats - 1, burden) beats, at
    most a third of the beats the record surely has (so never a whole-record bigeminy), grouped
    into single beats and couplets. PVCs have a fixed coupling interval in seconds; PACs a
    coupling of 0.5-0.85 sinus cycles, the earlier ones more often conducted with aberrancy or
    blocked, and reset the sinus node (a non-compensatory pause)."""
    sinus = rhythm in ("SR", "SBRAD", "STACH")
    present = [k for k in (PAC, PVC) if (sinus or (k == PVC and rhythm in NO_P_WAVE_RHYTHMS)) and rng.random() < _ECTOPY_P[k]]
    if not present:
        return (), np.nan
    rr = 60.0 / hr
    room = max(len(present), (int(8.8 / rr) - 2) // 3)  # a third of the beats _place_ectopics surely has
    counts = [1 + int(rng.binomial(max(int(10.0 / rr) - 1, 0), rng.uniform(*_BURDEN))) for _ in present]
    while sum(counts) > room:
        counts[int(np.argmax(counts))] -= 1
    events = []
    for kind, count in zip(present, counts):
        focus = (clip(rng.normal(_PVC_COUPLING_S, _PVC_COUPLING_SD), 0.32, 0.62) if kind == PVC
                 else rng.uniform(*_PAC_COUPLING))
        while count:
            beats = 2 if count >= 2 and rng.random() < _COUPLET_P else 1
            count -= beats
            if kind == PVC:
                coupling = clip((focus + rng.normal(0.0, _PVC_JITTER_S)) / rr, 0.3, 0.8)
                interpolated = beats == 1 and sinus and rr >= 0.9 and rng.random() < _INTERPOLATED_P
                events.append(Ectopic(PVC, coupling, beats, interpolated))
                continue
            coupling = clip(focus + rng.normal(0.0, 0.03), 0.45, 0.85)
            early = (0.7 - coupling) / 0.2  # > 0 below 0.7 cycles: refractory AV node / bundle branch
            u = rng.random()
            variant = (PAC_BLOCKED if beats == 1 and u < 0.25 * early
                       else PAC_ABERRANT if u < 0.6 * early else PAC)
            events.append(Ectopic(variant, coupling, beats, sact=rng.uniform(*_SACT_S)))
    n_pvc = sum(e.beats for e in events if e.kind == PVC)
    text = ", ".join((["SVES"] if PAC in present else []) + ([f"{n_pvc}ES"] if n_pvc else []))
    return tuple(events), text


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
        return clip(rng.uniform(*_AFIB_BPM) + shift, *_AFIB_BPM), 0.0
    brady, tachy = rng.uniform(*_BRADY_BPM), rng.uniform(*_TACHY_BPM)
    lo, hi = {"SBRAD": (_SINUS_BPM[0], brady), "STACH": (tachy, _SINUS_BPM[1])}.get(rhythm, (brady, tachy))
    hr = clip(rng.uniform(lo, hi) + shift, lo, hi)
    rr = 60.0 / hr
    criterion = rng.uniform(min(0.10 * rr, _SARRH_PP_S[0]), _SARRH_PP_S[1])
    if rhythm != "SARRH":  # their respiratory RR variation is the HRV spectrum's HF peak alone
        return hr, 0.0
    return hr, criterion * rng.uniform(1.0, 2.2) / (2.0 * rr)  # RR = rr (1 + a sin): peak-to-peak 2 a rr


def _draw_flutter(rng: np.random.Generator) -> Flutter:
    """Atrial flutter of one record. Typical (counter-clockwise cavotricuspid) flutter: F-wave vector
    superior (frontal angle -100 to -80 degrees: negative in II, III, aVF, near zero in I) and
    anterior (positive in V1); clockwise: the reverse (positive inferior, negative in V1)."""
    block = _pick(rng, [b for b, _ in _FLUTTER_BLOCK], [p for _, p in _FLUTTER_BLOCK])
    typical = bool(rng.random() < _FLUTTER_TYPICAL_P)
    a = np.deg2rad(rng.uniform(-100.0, -80.0))
    vector = np.array([np.cos(a), np.sin(a), rng.uniform(0.5, 0.9)])
    return Flutter(atrial_bpm=rng.uniform(*_FLUTTER_BPM), block=int(block),
                   amp=clip(rng.lognormal(np.log(0.3), 0.3), 0.15, 0.5), phase=rng.uniform(0.0, 1.0),
                   typical=typical, vector=(1.0 if typical else -1.0) * vector / np.linalg.norm(vector))


def _draw_pathology(rng: np.random.Generator, age: float, sex: int) -> list[str]:
    """Diagnostic + form codes of one patient (empty list = healthy)."""
    age_factor = clip(0.35 + age / 70, 0.5, 1.7)
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


def draw_dataset(n_records: int, seed: int) -> tuple[pd.DataFrame, list[Spec]]:
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
        age = clip(round(rng.normal(60, 17)), 18, 95)
        patients.append({
            "patient_id": pid, "n": k, "sex": sex, "age": age,
            "height": np.nan if rng.random() < 0.68 else float(np.round(rng.normal(176 if sex == 0 else 164, 7))),
            "weight": np.nan if rng.random() < 0.57 else float(np.round(rng.normal(82 if sex == 0 else 70, 13))),
            "codes": _draw_pathology(rng, age, sex), "morph": patient_morph(rng),
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
        no_p = rhythm in NO_P_WAVE_RHYTHMS
        codes = [c for c in pat["codes"] if not (no_p and c in _P_WAVE_CODES)]
        if no_p and not any(_statement(c).diagnostic for c in codes) and rng.random() < 0.5:
            codes.append(_pick(rng, ("NDT", "ISC_")))
        if not any(_statement(c).diagnostic for c in codes) and not no_p:
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
        waves, qtc, axis = morphology(pat, code_set, rhythm)
        hr, resp_amp = _draw_rate(rng, rhythm, pat)
        flutter = _draw_flutter(rng) if rhythm == "AFLT" else None
        hr = flutter.ventricular_bpm() if flutter else hr
        noise = _draw_noise(rng)
        ectopics, extra = _draw_ectopics(rng, rhythm, hr)
        codes += (["PAC"] if any(e.kind in PAC_KINDS for e in ectopics) else []) + (
            ["PVC"] if any(e.kind == PVC for e in ectopics) else [])
        sinus = not no_p
        spec = Spec(
            ecg_id=ecg_id, rhythm=rhythm, hr=hr, waves=waves, qtc=qtc, leads=pat["morph"]["leads"],
            resp_amp=resp_amp, resp_hz=rng.uniform(0.25, 0.4) if rhythm == "SARRH" else rng.uniform(0.2, 0.4),
            hrv_cv=clip(rng.lognormal(np.log(_hrv_median(hr)), 0.4), 0.004, 0.045) if sinus else 0.0,
            lf_hf=clip(rng.lognormal(np.log(1.5), 0.5), 0.3, 5.0),
            resp_qrs=rng.uniform(0.02, 0.1), beat_jitter=rng.uniform(0.01, 0.05),
            ectopics=ectopics, ectopic_waves=ectopic_waves(rng, pat["morph"]["gain"]) if ectopics else [],
            af_cv=rng.uniform(0.12, 0.35), af_amp=clip(rng.lognormal(np.log(0.06), 0.5), 0.02, 0.2),
            af_hz=rng.uniform(4.5, 8.5), flutter=flutter,
            bw_amp=clip(rng.lognormal(np.log(0.03), 0.6), 0.005, 0.2), white_uv=rng.uniform(1.5, 5.0),
            emg_uv=clip(rng.lognormal(np.log(4.0), 0.6), 1.0, 20.0),
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
            "heart_axis": axis_label(axis) if rng.random() < 0.6 else np.nan,
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

