"""OpenStack's own network API suites, as ``.ci/tempest`` runs them against ``portsec serve``.

pytest collects nothing here (no ``test_*.py`` file, and importing this package imports no
tempest): ``.ci/tempest`` runs these with stestr, in its own venv that has tempest and
neutron-tempest-plugin, with ``--test-path tests/tempest_suites``; unittest discovery then calls
``load_tests`` below, which loads the suites named in ``PORTSEC_TEMPEST_SUITES``.
"""

from __future__ import annotations

import unittest
from typing import Any


def load_tests(loader: unittest.TestLoader, standard_tests: unittest.TestSuite, pattern: Any) -> unittest.TestSuite:
    from tests.tempest_suites import suites  # imports tempest: only under discovery, in the tempest venv

    standard_tests.addTests(suites.load(loader))
    return standard_tests
