"""``python -m llmvoice.benchmark``: see :mod:`llmvoice.benchmark.cli`."""

import sys

from llmvoice.benchmark.cli import main

sys.exit(main())
