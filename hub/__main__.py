"""`python -m hub` is the same as the `cap-hub` console script."""

import sys

from hub.cli import main

sys.exit(main())
