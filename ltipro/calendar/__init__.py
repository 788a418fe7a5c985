"""Meetings in LMS calendars: the sync job, reconciliation, and reaching a course's LMS.

See ``docs/calendar.md``.
"""
