"""`damtui train` with the FakeEngine in place of the engine: the app's training process in tests.

The real CLI runs (its arguments, Ctrl+C/SIGTERM handling, printer, exit codes) in a real process
of its own; only the engine is the fake (no torch): `DamtuiApp(trainer=FAKE_TRAINER)`.
FAKE_TRAIN="BATCHES,DELAY[,EPOCH:BATCH:FILE]" sets the fake's batches per epoch, seconds per batch,
and where it holds until FILE exists (so a test can act while the run is surely still training).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from fakes import FakeEngine

batches, delay, *hold = (os.environ.get("FAKE_TRAIN") or "4,0.05").split(",")
engine = FakeEngine(batches=int(batches), batch_delay=float(delay))
if hold:
    epoch, batch, release_file = hold[0].split(":", 2)
    engine.hold_at = (int(epoch), int(batch))

    def _release_when_the_file_exists() -> None:
        while not Path(release_file).exists():
            time.sleep(0.05)
        engine.release()

    threading.Thread(target=_release_when_the_file_exists, daemon=True).start()
fake = types.ModuleType("damtui.train.engine")
fake.train = engine  # type: ignore[attr-defined]
sys.modules["damtui.train.engine"] = fake

import damtui.train

damtui.train.engine = fake  # type: ignore[attr-defined]

from damtui.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
