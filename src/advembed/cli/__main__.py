"""``python -m advembed.cli``."""

import sys

from advembed.cli import main

sys.exit(main())
