"""The launch's two routes with nothing behind them, in Flask (the reference's stack).

The same answers as ``floorbench.apps``, behind Werkzeug's ``ProxyFix`` as the reference
tool runs. Served by ``gunicorn --workers 2 --worker-class sync floorbench.flask_app:app``.
"""

from __future__ import annotations

from flask import Flask, Response, redirect, request
from werkzeug.middleware.proxy_fix import ProxyFix

from floorbench import payload

PAGE = payload.page()

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)  # type: ignore[method-assign]


@app.get(payload.LOGIN_PATH)
def login() -> Response:
    response = redirect(payload.LOCATION, 302)
    response.set_cookie(
        payload.STATE_COOKIE_NAME,
        payload.STATE,
        max_age=payload.STATE_MAX_AGE,
        path="/lti",
        secure=True,
        httponly=True,
        samesite="None",
    )
    return response


@app.post(payload.LAUNCH_PATH)
def launch() -> Response:
    request.get_data()
    response = Response(PAGE, mimetype="text/html")
    response.set_cookie(
        payload.SESSION_COOKIE_NAME,
        payload.SESSION_VALUE,
        max_age=payload.SESSION_MAX_AGE,
        path="/",
        secure=True,
        httponly=True,
        samesite="None",
    )
    return response


@app.get("/healthz")
def healthz() -> str:
    return "ok"
