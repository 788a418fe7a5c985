"""The calendar sync benchmark (``bench/calendar_sync.py``); see bench/README.md."""
