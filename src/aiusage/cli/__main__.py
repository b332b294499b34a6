"""``python -m aiusage.cli``: runs the command-line interface and exits with its status."""

import sys

from aiusage.cli import main

sys.exit(main())
