"""The fault tests' shared installation (installation.py) keeps pytest's detailed
assertion messages, as if its checks were written in the tests themselves."""

import pytest

pytest.register_assert_rewrite("installation")
