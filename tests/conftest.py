"""Settings every test shares.

The suite runs as `.venv/bin/python -m pytest` without activating the virtual environment, and
several tests run the installed commands by name (`dtx-instantiate`, `dtx-store`, the tutorial's
shell lines). The directory of the interpreter running the tests comes first on PATH, so those
names are the commands of this checkout's environment, whatever else the machine has installed.
"""

from __future__ import annotations

import os
import sys

_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
