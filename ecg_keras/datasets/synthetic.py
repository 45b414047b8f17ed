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
* Rhythms (only these rhythm statements are ever assigned, each on >= 12 % of the records but
  AFLT on 5 %, folds stratified on them): SBRAD 40 bpm up to, STACH from, a threshold each
  record draws from the span of published definitions (bradycardia below 50-60 bpm, tachycardia above
  90-100), SR and SARRH in between (SARRH: respiratory RR swing above the record's own sinus
  arrhythmia criterion, 10 % of the cycle to 160 ms, at 15-24 breaths/min), so a label's
  probability is monotone in the rate; AFIB 55-150 (independent
  log-normal RR intervals, coefficient of variation 0.12-0.35, no P waves, 4.5-8.5 Hz
  fibrillatory f-waves strongest in V1 and the inferior leads); AFLT (atrial flutter at
  240-340/min: sawtooth F waves without isoelectric line, negative in II/III/aVF and positive in
  V1 when typical, reversed when clockwise; 2:1, 4:1, 3:1 or variable AV block, each QRS at the
  same F-wave phase; no P waves). Sinus RR intervals carry heart
  rate variability (McSharry et al. 2003's LF/HF spectrum) and are rescaled so that the record's
  mean rate is the class's. Ectopy (``PAC``/``PVC`` form codes, ``extra_beats``): 8 % of the
  SR/SBRAD/STACH records have premature atrial beats (sinus node reset; some aberrant or
  blocked) and 6 % of them, of AFIB and of AFLT premature ventricular beats (fixed coupling, full
  compensatory pause or interpolated), 1 to several per record, sometimes in couplets
  (docs/SYNTHETIC.md sections 5-6). QT follows the preceding RR (Bazett), so the T wave moves beat
  by beat in AFIB. Wave amplitudes vary from beat to beat (respiration, jitter); electrode
  placement, QRS gain, width and axis vary between patients.
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
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.datasets.ptbxl_writer import (PTBXL_COLUMNS, record_name, simple_signal, write_ptbxl_layout,
                                             write_wfdb)
from ecg_keras.datasets.synthetic_metadata import RENDERED_CODES, RHYTHM_MIX, draw_dataset, noise_leads
from ecg_keras.datasets.synthetic_morphology import (DERIVE, FLUTTER_VARIABLE_BLOCK, NO_P_WAVE_RHYTHMS, NORMAL,
                                                     PAC_BLOCKED, PVC, Spec)
from ecg_keras.files import write_plain
from ecg_keras.statements import statements_frame

__all__ = ["generate_synthetic_ptbxl", "write_ptbxl_layout", "write_wfdb", "record_name", "simple_signal",
           "noise_leads", "GENERATOR_VERSION", "PTBXL_COLUMNS", "RHYTHM_MIX", "RENDERED_CODES"]

GENERATOR_VERSION = "5"
DURATION_S = 10
BASE_FS = 500


# --------------------------------------------------------------------------- signal rendering
_PAD_S = 1.0  # rendered (and filtered) beyond both ends, so filters and beats have no edge effects


def _modulation(rng: np.random.Generator, t: np.ndarray, lf_hf: float, resp_hz: float) -> np.ndarray:
    """Zero-mean unit-variance RR modulation on the times ``t`` with McSharry et al.'s (2003) bimodal
    spectrum: Gaussian LF (Mayer waves, 0.1 Hz, sd 0.01 Hz) and HF (respiration) peaks, power ratio
    ``lf_hf``; random phases."""
    f = np.linspace(0.01, 0.5, 50)
    power = (lf_hf * np.exp(-0.5 * ((f - 0.1) / 0.01) ** 2) + np.exp(-0.5 * ((f - resp_hz) / 0.02) ** 2))
    amp = np.sqrt(power / power.sum())
    m = (amp[:, None] * np.sin(2 * np.pi * f[:, None] * t[None, :] + rng.uniform(0, 2 * np.pi, (len(f), 1)))).sum(0)
    return m * np.sqrt(2.0)


def _beat_times(spec: Spec, rng: np.random.Generator, t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s) covering [-2.5, t_end + 2.5] and each beat's kind (``synthetic_morphology``'s
    beat kinds; a blocked PAC's time is where its QRS would have been).

    Sinus rhythms: RR(t) = RR0 (1 + cv m(t) + respiratory sinus arrhythmia), rescaled so that the
    mean RR inside [0, t_end] is exactly 60 / hr (the rate that defines the class). AFIB:
    independent log-normal RRs. AFLT: whole numbers of F-wave cycles (``_flutter_rr``). Then the
    premature beats (``_place_ectopics``).
    """
    rr0 = 60.0 / spec.hr
    n = int((t_end + 6.0) / 0.25) + 4
    if spec.rhythm == "AFIB":
        sd = np.sqrt(np.log1p(spec.af_cv ** 2))
        rr = np.maximum(rr0 * rng.lognormal(-sd * sd / 2, sd, n), 0.27)
    elif spec.flutter is not None:
        rr = _flutter_rr(spec, rng, n)
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
    if spec.rhythm not in NO_P_WAVE_RHYTHMS and inside.sum() >= 2:  # the class's rate, exactly, within the record
        i0, i1 = np.flatnonzero(inside)[[0, -1]]
        mean_rr = (times[i1] - times[i0]) / (i1 - i0)
        times = times[i0] + (times - times[i0]) * (rr0 / mean_rr)
    times, kinds = _place_ectopics(spec, rng, times, t_end)
    keep = times < t_end + 2.5
    return times[keep], kinds[keep]


# One F-wave cycle of typical flutter along its (superior) heart vector, as the inferior leads show
# it negated: a slow downslope, a sharp negative deflection and a fast upstroke, no isoelectric line.
_F_PHASE = np.array([0.0, 0.5, 0.72, 0.86, 1.0])
_F_SHAPE = -np.array([0.35, 0.05, -0.65, 0.45, 0.35])
_F_SHAPE = (_F_SHAPE - np.trapezoid(_F_SHAPE, _F_PHASE)) / np.ptp(_F_SHAPE)  # zero mean, unit peak-to-peak


def _flutter_rr(spec: Spec, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` RR intervals of atrial flutter: each one conducts every n-th F wave (n = the fixed block,
    or drawn per beat from ``FLUTTER_VARIABLE_BLOCK``); F-wave cycle lengths vary by ~1 %."""
    fl = spec.flutter
    ratios = (np.full(n, fl.block) if fl.block else
              rng.choice(list(FLUTTER_VARIABLE_BLOCK), size=n, p=list(FLUTTER_VARIABLE_BLOCK.values())))
    cycles = 60.0 / fl.atrial_bpm * (1.0 + 0.01 * rng.standard_normal(int(ratios.sum())))
    return np.add.reduceat(cycles, np.concatenate([[0], np.cumsum(ratios)[:-1]]))


def _flutter_waves(spec: Spec, beats: np.ndarray, kinds: np.ndarray, n: int, fs: int) -> np.ndarray:
    """(n, 3) heart vector of the F waves. The F-wave phase is anchored on the conducted beats (each
    QRS ``spec.flutter.phase`` cycles after an F-wave onset) and advances by whole cycles between
    them, so a premature ventricular beat leaves the atrial circuit alone."""
    fl = spec.flutter
    cl = 60.0 / fl.atrial_bpm
    anchors = beats[kinds == NORMAL] - fl.phase * cl
    cycle = np.concatenate([[0.0], np.cumsum(np.maximum(1.0, np.round(np.diff(anchors) / cl)))])
    t = np.arange(n) / fs - _PAD_S
    count = np.interp(t, anchors, cycle)
    count = np.where(t < anchors[0], (t - anchors[0]) / cl, count)
    count = np.where(t > anchors[-1], cycle[-1] + (t - anchors[-1]) / cl, count)
    return np.outer(fl.amp * np.interp(count % 1.0, _F_PHASE, _F_SHAPE), fl.vector)


def _place_ectopics(spec: Spec, rng: np.random.Generator, times: np.ndarray,
                    t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Beat times and kinds with the record's premature events at random sinus beats (before
    t_end - 0.6 s, the beat before them inside the record), in random order, each preceded and
    followed by a sinus beat. A premature beat comes ``coupling`` of the local RR after the beat
    before it; a PVC replaces a sinus beat (full compensatory pause) or, interpolated, is inserted
    between two; a PAC resets the sinus node: the next sinus beat follows after one cycle plus
    2 x SACT, less than a compensatory pause."""
    kinds = np.zeros(len(times), dtype=np.int64)
    events = [spec.ectopics[i] for i in rng.permutation(len(spec.ectopics))]
    if not events:
        return times, kinds
    inner = np.flatnonzero((times < t_end - 0.6) & (np.concatenate([[-np.inf], times[:-1]]) > 0.05))
    lengths = np.array([e.beats for e in events])
    m = len(events)
    spare = len(inner) - lengths.sum() - (m - 1)  # sinus beats beyond one between events
    if spare < 0:
        raise RuntimeError(f"record {spec.ecg_id}: {m} premature events do not fit in {len(inner)} beats")
    for _ in range(10):  # evenly spread events would read as trigeminy: draw again
        extra = np.sort(rng.integers(0, spare + 1, m))
        starts = inner[0] + extra + np.concatenate([[0], np.cumsum(lengths[:-1] + 1)])
        if m < 3 or len(set(np.diff(starts))) > 1:
            break
    for e, k in zip(reversed(events), starts[::-1]):  # right to left: indices before k stay valid
        rr = times[k] - times[k - 1]
        if e.interpolated:
            times = np.insert(times, k, times[k - 1] + e.coupling * rr)
            kinds = np.insert(kinds, k, PVC)
            continue
        t = times[k - 1]
        for j in range(e.beats):
            t += e.coupling * rr
            times[k + j], kinds[k + j] = t, e.kind
        if e.kind != PVC:  # sinus node reset: the sinus beats after it move as one
            k_next = k + e.beats
            times[k_next:] += t + min(rr + 2 * e.sact, (1.85 - e.coupling) * rr) - times[k_next]
    return times, kinds


def _render_clean(spec: Spec, rng: np.random.Generator, fs: int = BASE_FS) -> np.ndarray:
    """The heart vector's projection on the 8 recorded leads (I, II, V1..V6), padded by ``_PAD_S``."""
    pad = int(_PAD_S * fs)
    n = DURATION_S * fs + 2 * pad
    beats, kinds = _beat_times(spec, rng, DURATION_S)
    conducted = kinds != PAC_BLOCKED  # QT follows the preceding RR of beats with a QRS
    prev_rr = np.full(len(beats), 60.0 / spec.hr)
    prev_rr[conducted] = np.diff(beats[conducted], prepend=beats[conducted][0] - 60.0 / spec.hr)
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
    if spec.flutter is not None:
        heart += _flutter_waves(spec, beats, kinds, n, fs)
    return heart @ spec.leads  # (n, 8)


def _acquire(recorded: np.ndarray, spec: Spec, rng: np.random.Generator, fs: int = BASE_FS) -> np.ndarray:
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


def _add_recording_problems(sig: np.ndarray, spec: Spec, rng: np.random.Generator, fs: int = BASE_FS) -> None:
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


def render_record(spec: Spec) -> np.ndarray:
    """(5000, 12) float64 signal at 500 Hz in mV for one record specification."""
    rng = np.random.default_rng(spec.seed)
    recorded = _acquire(_render_clean(spec, rng), spec, rng)
    pad = int(_PAD_S * BASE_FS)
    sig = recorded[pad:pad + DURATION_S * BASE_FS] @ DERIVE  # III, aVR, aVL, aVF derived as devices do
    _add_recording_problems(sig, spec, rng)
    return sig


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


def _render(spec: Spec, sampling_rates: Sequence[int]) -> dict[int, np.ndarray]:
    sig = render_record(spec)
    return {fs: sig if fs == BASE_FS else _downsample(sig, fs) for fs in sampling_rates}


# --------------------------------------------------------------------------- public API
_README = """\
SYNTHETIC DATA - NOT PTB-XL, NOT REAL ECGS.

This folder has the layout of PTB-XL 1.0.3 (PhysioNet) so that ecg_keras can run every step
without downloading anything, but every record was generated by
ecg_keras.datasets.synthetic.generate_synthetic_ptbxl (ecg_keras {package}, generator version
{version}) with n_records={n}, seed={seed}, sampling_rates={rates}:

    python -c "from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl as g; g('<dest>', n_records={n}, seed={seed}, sampling_rates={rates})"

Signals are sums of Gaussian P-QRS-T waves projected onto the 12 leads; rhythm labels (SR,
SBRAD, STACH, SARRH, AFIB, AFLT), several diagnostic/form statements and the noise columns are
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
    meta, specs = draw_dataset(int(n_records), int(seed))
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
