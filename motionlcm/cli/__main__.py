"""`python -m motionlcm.cli`."""

import sys

from motionlcm.cli import main

sys.exit(main())
