"""``python -m haulwatch`` is the ``haulwatch`` command."""

import sys

from haulwatch.api.cli import main

if __name__ == "__main__":
    sys.exit(main())
