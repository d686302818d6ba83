"""damtui: Deep AUC Maximization on MedMNIST, in the terminal."""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl+C while the program starts (modules import): nothing is written yet; exit quietly."""
    _sys.stderr.write("damtui: interrupted\n")
    _os._exit(130)


# As early as damtui's own code runs: the console script imports this package first, and so does
# `python -m damtui[.cli]`, whose argv[0] is "-m" while the package imports. A library import
# (tests, notebooks) keeps Python's handler; damtui.cli.main puts it back once the command runs.
if _os.path.basename(_sys.argv[0]) in ("damtui", "-m") and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
