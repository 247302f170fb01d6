"""Session-wide test settings."""

from __future__ import annotations

import os
import tempfile

# netbayes' disk cache of the calibrated ranges (netbayes.calibration.ranges_cache): a folder of
# this test run, never the user's ~/.cache (subprocesses inherit it)
os.environ.setdefault("NETBAYES_CACHE_DIR", tempfile.mkdtemp(prefix="netbayes-test-cache-"))
