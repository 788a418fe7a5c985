"""Bulk meeting import: a CSV of (Meeting ID, Context ID, Domain) rows, checked, applied
all or nothing as one batch, and undone as one.

``csvfile`` reads what spreadsheets write, ``meeting_ids`` recognises IDs a spreadsheet
mangled, ``checks`` runs the dry run, ``batches`` stores, applies and undoes batches, and
``confirm`` is the job that emails the admin. Described for admins in ``docs/import.md``.

This package's ``__init__`` imports nothing, since the storage schema imports its tables.
"""
