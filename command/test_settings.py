"""Settings for the test suite: the production settings, with test-run defaults.

Tests still use the real PostGIS and Redis (the private ones under .local/ unless
DATABASE_URL / REDIS_URL are set).
"""

import os

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
# Each test run gets its own channel-layer namespace on the shared Redis; a Daphne process
# started by a test inherits it through the environment.
os.environ.setdefault("CHANNEL_PREFIX", f"gctest{os.getpid()}")

from command.settings import *  # noqa: F403
