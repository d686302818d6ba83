"""One lock for the heavy imports the app's worker threads make (torch through the engine, the
device list, medmnist's dataset list, the GPU probe), shared by the app and its screens.

Importing torch from two threads at once can hand one of them a partially initialised module
(AttributeError: partially initialized module 'torch'); these imports take turns.
"""

from __future__ import annotations

import threading

HEAVY_IMPORTS = threading.Lock()
