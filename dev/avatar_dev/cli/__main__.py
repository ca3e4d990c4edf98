"""`python -m avatar_dev.cli`: the `avatar` command (how the tests and `avatar stack up --detach` start it)."""

import sys

from avatar_dev.cli import main

sys.exit(main())
