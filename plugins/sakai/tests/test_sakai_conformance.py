"""The ltipro conformance suite, run against this plugin (see ltipro.testing.conformance).

It launches every example through the whole tool (on SQLite, and on PostgreSQL too when
LTIPRO_TEST_DATABASE_URL is set), alone and with every other installed plugin, and
checks every hook's contract. Class attributes tune it: ``lti_versions`` for an LMS
that sends only LTI 1.3, ``known_attribute`` for the custom parameter check.
"""

from ltipro.testing.conformance import ConformanceSuite


class TestSakaiConformance(ConformanceSuite):
    plugin = "sakai"
