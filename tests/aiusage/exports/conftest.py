"""Fixtures of the export tests: the in-process REST platform on each backend."""

from tests.aiusage.api.p2b_support import platform  # noqa: F401  (fixture)
