"""The fuzz runs' live servers as fixtures for the test_fuzz*.py files (see fuzzing.py)."""

from tests.contract.fuzzing import demo_server, edge_server

__all__ = ["demo_server", "edge_server"]
