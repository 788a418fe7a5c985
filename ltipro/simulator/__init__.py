"""The built-in LMS simulator: a real LTI 1.3 platform for development and tests."""
