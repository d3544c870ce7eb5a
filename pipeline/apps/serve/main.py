"""`vapipe serve --config FILE`: the service under the command line's stop controller.

SIGTERM (and SIGINT unless ignored) stop cleanly through the CLI's `StopController`: frames in
flight finish, outputs are finished, the summary is written, exit 130. SIGHUP rereads the
config file and applies only the difference, as `POST /api/reload` does; its handler only
starts a thread (the work takes locks the interrupted thread may hold).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from pipeline.apps.serve.config import load_config
from pipeline.apps.serve.service import Service, check_startable
from pipeline.apps.stopping import EXIT_INTERRUPTED, StopController
from pipeline.errors import VapipeError

log = logging.getLogger(__name__)

EXIT_OK = 0


def serve(
    config_path: str | Path,
    stop: StopController,
    *,
    read_only: bool = False,
    check_only: bool = False,
) -> int:
    config = load_config(config_path)
    check_startable(config)
    if check_only:
        print(f"{config_path}: valid ({len(config.cameras)} cameras)")
        return EXIT_OK
    service = Service(config, read_only=read_only)

    def on_reload(signum: int, frame: object) -> None:
        threading.Thread(target=_reload, args=(service,), name="reload", daemon=True).start()

    previous = signal.signal(signal.SIGHUP, on_reload)
    try:
        with stop.stopping(service.stop):
            summary = service.run()
    finally:
        signal.signal(signal.SIGHUP, previous)
    if summary is not None:
        print(summary.format_text())
    return EXIT_INTERRUPTED if stop.requested else EXIT_OK


def _reload(service: Service) -> None:
    log.info("SIGHUP: rereading %s", service.config.path)
    try:
        service.reload()
    except VapipeError as error:
        log.error("reload failed, the service runs on unchanged: %s", error)
