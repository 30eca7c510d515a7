"""``python -m ipl_core``: the ``ipl-train`` command line (:mod:`ipl_core.cli`)."""

import sys

from ipl_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
