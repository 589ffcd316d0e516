"""``python -m vecstore.cli``."""

import sys

from vecstore.cli import main

sys.exit(main())
