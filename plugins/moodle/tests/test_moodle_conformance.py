"""The ltipro conformance suite, run against this plugin (see ltipro.testing.conformance)."""

from ltipro.testing.conformance import ConformanceSuite


class TestMoodleConformance(ConformanceSuite):
    plugin = "moodle"
