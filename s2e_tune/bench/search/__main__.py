"""``python -m s2e_tune.bench.search``: the same as ``python -m s2e_tune.bench search``."""

import sys

from s2e_tune.bench.search import main

sys.exit(main())
