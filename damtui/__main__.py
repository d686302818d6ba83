"""`python -m damtui`: the same entry point as the `damtui` console script (for worktrees and venvs
where the script on PATH points at another checkout)."""

import sys

from damtui.cli import main

sys.exit(main())
