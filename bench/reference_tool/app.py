"""The reference tool: a minimal LTI 1.3 tool built as pylti1p3's documentation shows.

Flask, pylti1p3's Flask integration (``FlaskRequest``, ``FlaskOIDCLogin``,
``FlaskMessageLaunch``) and its cache-backed launch data storage
(``FlaskCacheDataStorage`` over Flask-Caching, with Redis as the shared cache the docs
recommend, so any gunicorn worker can finish a login another one started). The
platform's public key is cached as the docs' "Cache for Public Key" section shows, and
one ``requests.Session`` is reused: the reference is the documented set-up at its best.

It validates the launch (state cookie, nonce, signature, registration, deployment,
message) and renders a page. Configured from the environment::

    REFTOOL_ISSUER, REFTOOL_CLIENT_ID, REFTOOL_DEPLOYMENT_ID  the platform's registration
    REFTOOL_REDIS_URL                                         the shared cache
    REFTOOL_SECRET_KEY                                        Flask's secret key

Served by ``gunicorn --workers 2 --bind 127.0.0.1:PORT reference_tool.app:app``
(sync workers, gunicorn's default), behind a TLS proxy (``X-Forwarded-Proto``).
"""

from __future__ import annotations

import os
from typing import Any

import requests
from flask import Flask, render_template, request
from flask_caching import Cache
from pylti1p3.contrib.flask import (
    FlaskCacheDataStorage,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.tool_config import ToolConfDict
from werkzeug.middleware.proxy_fix import ProxyFix

ISSUER = os.environ["REFTOOL_ISSUER"]
CLIENT_ID = os.environ["REFTOOL_CLIENT_ID"]
DEPLOYMENT_ID = os.environ["REFTOOL_DEPLOYMENT_ID"]

app = Flask(__name__)
# Behind the TLS proxy: request.is_secure follows X-Forwarded-Proto, so pylti1p3 sets its
# cookies Secure; SameSite=None and uses its own session-id cookie, as in production.
app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)  # type: ignore[method-assign]
app.config.update(
    SECRET_KEY=os.environ["REFTOOL_SECRET_KEY"],
    CACHE_TYPE="RedisCache",
    CACHE_REDIS_URL=os.environ["REFTOOL_REDIS_URL"],
    CACHE_KEY_PREFIX="reftool:",
    CACHE_DEFAULT_TIMEOUT=600,
)
cache = Cache(app)

# The tool configuration, in the "one issuer ~ many client ids" form the docs recommend.
TOOL_CONF = ToolConfDict(
    {
        ISSUER: [
            {
                "default": True,
                "client_id": CLIENT_ID,
                "auth_login_url": ISSUER + "/auth",
                "auth_token_url": ISSUER + "/token",
                "auth_audience": None,
                "key_set_url": ISSUER + "/jwks.json",
                "key_set": None,
                "deployment_ids": [DEPLOYMENT_ID],
            }
        ]
    }
)
REQUESTS = requests.Session()


def launch_data_storage() -> FlaskCacheDataStorage:
    return FlaskCacheDataStorage(cache)


@app.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """OIDC login initiation."""
    flask_request = FlaskRequest()
    target_link_uri = flask_request.get_param("target_link_uri")
    if not target_link_uri:
        return render_template("error.html", message='Missing "target_link_uri" param'), 400
    oidc_login = FlaskOIDCLogin(flask_request, TOOL_CONF, launch_data_storage=launch_data_storage())
    try:
        return oidc_login.redirect(target_link_uri)
    except OIDCException as exc:
        return render_template("error.html", message=str(exc)), 400


@app.route("/launch", methods=["POST"])
def launch() -> Any:
    """The launch: validate the id_token, then render the tool's page."""
    storage = launch_data_storage()
    message_launch = FlaskMessageLaunch(
        FlaskRequest(), TOOL_CONF, launch_data_storage=storage, requests_session=REQUESTS
    )
    message_launch.set_public_key_caching(storage, cache_lifetime=7200)
    try:
        data = message_launch.get_launch_data()
    except LtiException as exc:
        return render_template("error.html", message=str(exc)), 400
    claim = "https://purl.imsglobal.org/spec/lti/claim/"
    context = data.get(claim + "context")
    if not isinstance(context, dict):
        context = {}
    roles = data.get(claim + "roles") or []
    return render_template(
        "launch.html",
        name=data.get("name") or data.get("sub"),
        email=data.get("email"),
        course=context.get("title") or context.get("id"),
        instructor=message_launch.check_teacher_access(),
        roles=roles,
        launch_id=message_launch.get_launch_id(),
        host=request.host,
    )
