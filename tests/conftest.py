"""What every tier shares: the support modules in tests/support, importable by plain name.

Tiers: tests/unit needs no server, no subprocess and no network; tests/integration talks to
real servers from the test process; tests/launcher runs programs in subprocesses. The
fixtures that start servers live in tests/support/server_fixtures.py and are taken in by the
conftest.py of the tiers that use them.
"""

from __future__ import annotations

import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))
