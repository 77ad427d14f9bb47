"""``python -m stickypi_assets.cli``: the same as the ``stickypi`` command."""

import sys

from stickypi_assets.cli import main

sys.exit(main())
