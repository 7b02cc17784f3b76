"""``python -m allocffi ...``: the same as the ``allocffi`` console script."""

import sys

from allocffi.harness.cli import main

sys.exit(main())
