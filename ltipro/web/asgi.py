"""The ASGI app built from the environment, for ``uvicorn ltipro.web.asgi:app --workers N``."""

from ltipro.web.app import create_app

app = create_app()
