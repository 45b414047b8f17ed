"""Console progress of a grid: the current run and epoch, and the training time left."""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Sequence

from ecg_keras.training.grid.plan import BASELINES, RunSpec, epochs_done


class Progress:
    """Console progress of the grid: the current run and epoch, and the time left for the grid
    (epochs left x the time per epoch of each (task, architecture): measured before the start,
    then the last epoch actually observed)."""

    def __init__(self, specs: Sequence[RunSpec], out: Path, est: dict | None, epochs: int, stream):
        self.specs, self.out, self.epochs, self.stream = list(specs), Path(out), epochs, stream
        self.epoch_s: dict[tuple[str, str], float] = {}
        for r in (est or {}).get("rows", []):
            if r["epoch_s"] is not None:
                self.epoch_s[(r["task"], r["arch"])] = r["epoch_s"]
        self._stop = threading.Event()
        self._thread = None

    def say(self, msg: str) -> None:
        print(msg, file=self.stream, flush=True)

    def left_seconds(self, index: int, current_done: int | None = None) -> float:
        """Training time left from run ``index`` on (``current_done`` epochs of it finished)."""
        total = 0.0
        for i, s in enumerate(self.specs[index:]):
            if s.arch in BASELINES or s.run(self.out).is_complete():
                continue
            done = current_done if i == 0 and current_done is not None else epochs_done(s.path(self.out))
            total += max(self.epochs - done, 0) * self.epoch_s.get((s.task, s.arch), 0.0)
        return total

    def start(self, index: int, spec: RunSpec) -> None:
        from ecg_keras.training.callbacks import format_duration

        left = self.left_seconds(index)
        self.say(f"[{index + 1}/{len(self.specs)}] {spec.task} / {spec.arch} / seed {spec.seed}"
                 + (f"  (grid: about {format_duration(left)} of training left)" if left else ""))
        if spec.arch not in BASELINES:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, args=(index, spec), daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self, index: int, spec: RunSpec) -> None:
        """Poll the run's history.csv (one row per finished epoch) and report each new epoch."""
        import csv

        from ecg_keras.training.callbacks import format_duration

        history = spec.run(self.out).history_csv

        def read() -> list[dict]:
            try:
                return list(csv.DictReader(history.read_text().splitlines()))
            except OSError:
                return []

        seen = len(read())  # rows of an earlier process (a resumed run) are not news
        stopped = False
        while not stopped:
            stopped = self._stop.wait(1.0)  # one last look after the run ends: a fast epoch is still reported
            rows = read()
            if len(rows) <= seen:
                continue
            seen = len(rows)
            with contextlib.suppress(KeyError, ValueError):
                self.epoch_s[(spec.task, spec.arch)] = float(rows[-1]["time_s"])
            left = self.left_seconds(index, current_done=int(rows[-1].get("epoch") or seen))
            self.say(f"    {spec.name}: epoch {rows[-1].get('epoch', seen)}/{self.epochs} done; "
                     f"grid: about {format_duration(left)} of training left")
