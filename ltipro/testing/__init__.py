"""Testing helpers for ltipro and its plugins: an in-process tool, a platform, launches."""

from ltipro.testing.harness import ToolHarness
from ltipro.testing.transport import RoutingTransport

__all__ = ["RoutingTransport", "ToolHarness"]
