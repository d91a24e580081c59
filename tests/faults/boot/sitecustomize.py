"""Installs fault injection in every Python process a fault trial starts (see ``tests/faults/inject.py``).

This folder is on ``sys.path`` only while a trial runs, and the hooks install only when ``SPARKFLOW_FAULTS``
names a plan; any other process is left alone.
"""

import os
import sys

if os.environ.get("SPARKFLOW_FAULTS"):
    _repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if _repository not in sys.path:
        sys.path.append(_repository)
    from tests.faults.inject import install_from_environment

    install_from_environment()
