"""`python -m augframe` runs the command line."""

import sys

from augframe.cli import main

sys.exit(main())
