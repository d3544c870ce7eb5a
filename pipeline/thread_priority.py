"""The lowest OS scheduling priority, for one thread (Linux: nice is per thread, and threads
a thread starts inherit its nice value)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

LOWEST_PRIORITY = 19  # Linux nice value


def lower_this_thread() -> bool:
    """Give the calling thread the lowest priority; whether it could (Linux only: elsewhere a
    thread id is not a process id, and nice is per process)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except OSError:
        return False
    return True


def call_at_lowest_priority(function: Callable[[], T]) -> T | None:
    """Call `function` in a new thread at the lowest priority, so that the threads it starts
    run at that priority too, and return its result; None, without calling it, if the
    priority cannot be lowered here. Its exception, if any, is raised here."""
    outcome: dict[str, object] = {}

    def call() -> None:
        if not lower_this_thread():
            return
        try:
            outcome["result"] = function()
        except BaseException as error:  # re-raised on the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=call, name="lowest-priority-call", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("result")  # type: ignore[return-value]
