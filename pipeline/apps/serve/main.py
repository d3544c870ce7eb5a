"""`vapipe serve --config FILE`: signals and exit status around the service.

SIGTERM and SIGINT stop cleanly (frames in flight finish, outputs are finished, the summary is
written; exit 130); a second one leaves at once. SIGHUP rereads the config file and applies
only the difference, as `POST /api/reload` does. The handlers only start a thread: the work
(which takes locks the interrupted thread may hold) never runs inside a signal handler.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from pipeline.apps.serve.config import load_config
from pipeline.apps.serve.service import Service, check_startable
from pipeline.errors import VapipeError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_INTERRUPTED = 0, 130


def serve(config_path: str | Path, *, read_only: bool = False, check_only: bool = False) -> int:
    config = load_config(config_path)
    check_startable(config)
    if check_only:
        print(f"{config_path}: valid ({len(config.cameras)} cameras)")
        return EXIT_OK
    service = Service(config, read_only=read_only)
    stopped_by: list[int] = []

    def on_stop(signum: int, frame: object) -> None:
        if stopped_by:
            sys.stderr.write("vapipe: stopped twice, exiting at once\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        stopped_by.append(signum)
        log.info("%s: stopping (again to quit at once)", signal.Signals(signum).name)
        threading.Thread(target=service.stop, name="stop", daemon=True).start()

    def on_reload(signum: int, frame: object) -> None:
        threading.Thread(target=_reload, args=(service,), name="reload", daemon=True).start()

    handlers = {signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: on_reload}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        summary = service.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if summary is not None:
        print(summary.format_text())
    return EXIT_INTERRUPTED if stopped_by else EXIT_OK


def _reload(service: Service) -> None:
    log.info("SIGHUP: rereading %s", service.config.path)
    try:
        service.reload()
    except VapipeError as error:
        log.error("reload failed, the service runs on unchanged: %s", error)
