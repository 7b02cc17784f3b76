"""``python -m allocffi ...``: the same as the ``allocffi`` console script."""

import sys

from allocffi.cli import main

sys.exit(main())
