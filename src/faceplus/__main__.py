"""``python -m faceplus ...``: the same command line as ``faceplus``."""

import sys

from faceplus.cli import main

sys.exit(main())
