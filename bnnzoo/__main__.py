"""``python -m bnnzoo``: the ``bnnzoo`` command."""

import sys

from bnnzoo.cli import main

sys.exit(main())
