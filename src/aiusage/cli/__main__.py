import sys

from aiusage.cli import main

sys.exit(main())
