"""Progress for long runs: a bar on a terminal, a plain log line now and then elsewhere."""

from __future__ import annotations

import contextlib
import logging
import sys
import time

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from pipeline.summary import Progress

log = logging.getLogger("vapipe")


class ProgressReporter:
    """Fed `Progress` snapshots from the main thread (`update`); shows them suitably.

    Counts frames, or files when `update` is given `files=(ended, total)` (a batch job); the
    bar's rate and ETA follow what it counts, and the frame rate is shown beside.
    """

    def __init__(self, enabled: bool = True, log_every_seconds: float = 10.0) -> None:
        self.enabled = enabled
        self._bar: tqdm | None = None
        self._log_every = log_every_seconds
        self._last_log = time.monotonic()
        self._started = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._logging = contextlib.ExitStack()

    def __enter__(self) -> ProgressReporter:
        if self.enabled and self._tty:  # log lines go above the bar, not through it
            self._logging.enter_context(logging_redirect_tqdm())
        return self

    def update(self, progress: Progress, files: tuple[int, int] | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        fps = progress.processed / max(now - self._started, 1e-9)
        if files is not None:
            count, total, unit = files[0], files[1], "file"
        else:
            count, total, unit = progress.processed, progress.expected, "frame"
        if self._tty:
            if self._bar is None:
                self._bar = tqdm(total=total or None, unit=unit, smoothing=0.1, dynamic_ncols=True)
            if files is not None:
                self._bar.set_postfix_str(f"{progress.processed} frames, {fps:.1f} fps")
            self._bar.update(count - self._bar.n)
            return
        if now - self._last_log >= self._log_every:
            self._last_log = now
            done = f"{count}/{total} {unit}s" if total else f"{count} {unit}s"
            eta = ""
            if total and count:
                eta = f", ETA {_duration((total - count) * (now - self._started) / count)}"
            frames = f", {progress.processed} frames" if files is not None else ""
            # decoded and dropped too: a long live run's health (the soak benchmark reads them)
            log.info(
                "progress: %s%s, %.1f fps%s, %d decoded, %d dropped",
                done, frames, fps, eta, progress.decoded, progress.dropped,
            )  # fmt: skip

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()
        self._logging.close()


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
