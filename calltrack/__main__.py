import sys

from calltrack.cli import main

sys.exit(main())
