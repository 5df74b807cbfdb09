"""Settings for the test suite: the production settings, with test-run defaults.

Tests still use the real PostGIS and Redis (the private ones under .local/ unless
DATABASE_URL / REDIS_URL are set).
"""

import os

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
# Plain HTTP on 127.0.0.1 in tests; `make test` runs `check --deploy` with DJANGO_SECURE=1.
os.environ.setdefault("DJANGO_SECURE", "0")
# Each test run gets its own channel-layer namespace on the shared Redis; a Daphne process
# started by a test inherits it through the environment.
os.environ.setdefault("CHANNEL_PREFIX", f"gctest{os.getpid()}")

from command.settings import *  # noqa: F403

# Tests serve static files straight from the apps (no collectstatic run needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
