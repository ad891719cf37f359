"""`python -m pygoka.cli` runs the pygoka command line."""

import sys

from pygoka.cli import main

sys.exit(main())
