"""`python -m damtui.cli`: the same entry point as the `damtui` console script (what sweeps start,
and what works in worktrees and venvs where the script on PATH points at another checkout)."""

import sys

from damtui.cli import main

sys.exit(main())
