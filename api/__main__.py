"""``python -m haulwatch.api`` is the ``haulwatch`` command."""

import sys

from haulwatch.api.cli import main

sys.exit(main())
