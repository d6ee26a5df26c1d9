"""A progress display for a batch of runs: one live line on a terminal, one line per run otherwise."""

import sys
import time


class Progress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.total = self.finished = self.skipped = 0
        self.current = ""
        self.epochs = 0

    def _line(self, text):
        if self.live:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()

    def start(self, total, skipped=0):
        self.total, self.skipped, self.began = total, skipped, time.monotonic()
        note = f" ({skipped} already stored, skipped)" if skipped else ""
        self.stream.write(f"{total} run{'s' if total != 1 else ''} to do{note}\n")
        self.stream.flush()

    def started(self, group):
        """A group went to a place: one run (its epochs follow when it trains here), or many as one
        program."""
        spec, seed, fold = group.runs[0]
        if len(group.runs) == 1:
            self.current = f"{spec.name} seed {seed}" + ("" if fold is None else f" fold {fold}")
        else:
            names = group.names()
            more = f" +{len(names) - 1} more" if len(names) > 1 else ""
            self.current = f"{names[0]}{more}: {len(group.runs)} runs as one program"
        self.epochs = spec.fit["epochs"]
        self._line(self._prefix() + self.current)

    def epoch(self, epoch):
        self._line(f"{self._prefix()}{self.current}  epoch {epoch}/{self.epochs}")

    def done(self, row):
        self.finished += 1
        status = row["status"]
        if status == "ok":
            what = f"test_accuracy {row.get('test_accuracy', float('nan')):.4f}  {row['fit_seconds']:.1f} s"
        else:
            what = (
                f"{status}: "
                f"{row.get('error') or ('the loss became non-finite' if status == 'diverged' else '')}"
            )
        if self.live and status == "ok":
            self._line(f"{self._prefix()}{self.current}  {what}")
        else:
            self._line("")
            fold = f" fold {row['fold']}" if row.get("fold") is not None else ""
            self.stream.write(f"{self._prefix()}{row['experiment']} seed {row['seed']}{fold}  {what}\n")
            self.stream.flush()

    def finish(self):
        if self.live:
            self._line("")
        elapsed = time.monotonic() - self.began
        note = f"; {self.skipped} already stored, skipped (--force re-runs them)" if self.skipped else ""
        self.stream.write(
            f"{self.finished} run{'s' if self.finished != 1 else ''} in {elapsed:.1f} s{note}\n"
        )
        self.stream.flush()

    def _prefix(self):
        width = len(str(self.total))
        return f"[{self.finished:>{width}}/{self.total}] "
