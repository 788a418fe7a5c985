"""The ltipro conformance suite, run against this plugin (see ltipro.testing.conformance)."""

from ltipro.testing.conformance import ConformanceSuite


class TestCanvasConformance(ConformanceSuite):
    plugin = "canvas"
