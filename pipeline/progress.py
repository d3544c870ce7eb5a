"""Progress for long runs: a bar on a terminal, a plain log line now and then elsewhere."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

from pipeline.pipeline import Progress

log = logging.getLogger("vapipe")


class ProgressReporter:
    """Fed `Progress` snapshots from the main thread (`update`); shows them suitably."""

    def __init__(self, enabled: bool = True, log_every_seconds: float = 10.0) -> None:
        self.enabled = enabled
        self._bar: tqdm | None = None
        self._log_every = log_every_seconds
        self._last_log = time.monotonic()
        self._started = time.monotonic()
        self._tty = sys.stderr.isatty()

    def __enter__(self) -> ProgressReporter:
        return self

    def update(self, progress: Progress) -> None:
        if not self.enabled:
            return
        if self._tty:
            if self._bar is None:
                self._bar = tqdm(total=progress.expected or None, unit="frame", smoothing=0.1)
            self._bar.update(progress.processed - self._bar.n)
            return
        now = time.monotonic()
        if now - self._last_log >= self._log_every:
            self._last_log = now
            fps = progress.processed / max(now - self._started, 1e-9)
            total = f"/{progress.expected}" if progress.expected else ""
            log.info("progress: %d%s frames, %.1f fps", progress.processed, total, fps)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()
