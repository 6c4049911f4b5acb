"""``python -m parm`` runs the ``parm`` command."""

import sys

from parm.cli import main

sys.exit(main())
