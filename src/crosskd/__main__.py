"""`python -m crosskd`: the same as the `crosskd` console script."""

import sys

from crosskd.cli import main

sys.exit(main())
