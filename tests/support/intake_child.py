"""A process that runs only the intake (Watcher → Intake → Ledger) on a config file.

`python -m tests.support.intake_child CONFIG`: recovers, starts watching, prints "ready", then takes
files until SIGTERM. test_intake_crash.py kills it with SIGKILL at random moments.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path

from invoice_mailer.config.load import load_config
from invoice_mailer.intake.events import Intake
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.watch.watcher import Watcher


def main(config_file: str) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)6d %(name)s %(message)s"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    config = load_config(Path(config_file))
    ledger = Ledger(config.state_dir)
    intake = Intake(config, ledger)
    intake.recover()
    watcher = Watcher(config.watch, intake.offer)
    intake.tracker.closes = watcher.reports_close
    watcher.start()
    watcher.scan()
    print("ready", flush=True)
    while not stop.is_set():
        intake.step(max_wait=0.05)
        watcher.supervise(time.monotonic())
    watcher.stop()
    ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
