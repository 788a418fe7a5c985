"""Meetings providers: the services that hold the meetings a course schedules."""
