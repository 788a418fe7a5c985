"""The reference tool: a minimal LTI 1.3 tool on pylti1p3's Flask integration (see app.py)."""
