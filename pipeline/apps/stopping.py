"""Stopping a running command cleanly on SIGTERM or Ctrl-C, from any parent process.

A supervisor, a container runtime or a shell script stops a process with SIGTERM; a shell
script starts its background jobs with SIGINT ignored. So SIGTERM always stops, SIGINT stops
where it is not ignored (an interactive Ctrl-C), and SIGHUP is left alone (kept for reloading
a service's configuration). Stopping means: no new work, frames in flight finish, sinks are
flushed, the summary or report is written, exit status 130.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130


class StopController:
    """Turns a stop request (a signal, or `request` from code) into calls of the `stop`
    functions of whatever is running, registered with `stopping`.

    A request before anything is registered (Ctrl-C while the model loads) is remembered: what
    registers afterwards is stopped at once. The signal handler itself only starts a thread
    that makes the calls, so it never takes a lock the interrupted main thread may hold. A
    second signal while stopping leaves at once, exit 130 (a stop that hangs can be cut short).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: list[Callable[[], None]] = []
        self._requested = threading.Event()
        self._previous: dict[int, object] = {}
        self._signalled = False  # set and read only by the handler, on the main thread

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a stop is requested; True if it was."""
        return self._requested.wait(timeout)

    @contextlib.contextmanager
    def stopping(self, stop: Callable[[], None]) -> Iterator[None]:
        """While in the block, a stop request calls `stop` (at once if one came already)."""
        with self._lock:
            self._targets.append(stop)
            already = self.requested
        if already:
            stop()
        try:
            yield
        finally:
            with self._lock:
                self._targets.remove(stop)

    def request(self) -> None:
        """Stop what runs now and what registers later. Safe from any thread."""
        with self._lock:
            self._requested.set()
            targets = list(self._targets)
        for stop in targets:
            stop()

    # -- signals -----------------------------------------------------------------------------

    def install(self) -> None:
        """Handle SIGTERM, and SIGINT unless it is ignored; only from the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if signum == signal.SIGINT and previous == signal.SIG_IGN:
                continue  # a background job of a script: the script asked not to be stopped so
            self._previous[signum] = previous
            signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        """Put back the handlers `install` replaced."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def __enter__(self) -> StopController:
        self.install()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    def _on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self._signalled:
            os.write(2, f"vapipe: {name} again: exiting at once\n".encode())
            os._exit(EXIT_INTERRUPTED)
        self._signalled = True
        threading.Thread(
            target=self._stop_on_signal, args=(name,), name="stop", daemon=True
        ).start()

    def _stop_on_signal(self, name: str) -> None:
        log.warning("%s: stopping; frames in flight finish and outputs are written (%s again "
                    "to quit at once)", name, name)  # fmt: skip
        self.request()
