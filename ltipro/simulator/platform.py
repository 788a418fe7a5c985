"""A real LTI 1.3 platform (and LTI 1.1 consumer), as small as one can be.

It has its own RSA key, signs ``id_token``s for the example launches the installed
plugins offer, and answers OIDC authentication requests. The simulator's pages, the
test suite, the conformance kit and the benchmarks all launch through it, and it talks
to the tool only over HTTP.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

from ltipro.crypto import Signer, generate_rsa_key
from ltipro.extension import ExampleLaunch

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"


class PlatformError(ValueError):
    """An authentication request the platform refuses (as a real LMS would)."""


@dataclass
class SimulatedPlatform:
    """One LMS registration of the tool, seen from the LMS's side."""

    issuer: str
    client_id: str
    deployment_id: str
    tool_login_url: str
    tool_launch_url: str
    private_key: str = ""
    kid: str = ""
    public_jwk: dict[str, Any] = field(default_factory=dict)
    hint_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    lti11_key: str | None = None
    lti11_secret: str | None = None

    def __post_init__(self) -> None:
        if not self.private_key:
            self.kid, self.private_key, self.public_jwk = generate_rsa_key()
        self._hints = Signer(self.hint_secret, "simulator-login-hint")

    # -- keys --------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def rotate_key(self) -> None:
        """Start signing with a new key (the old one is no longer published)."""
        self.kid, self.private_key, self.public_jwk = generate_rsa_key()

    # -- LTI 1.3 --------------------------------------------------------------------------

    def login_params(
        self,
        claims: Mapping[str, Any],
        *,
        storage_target: str | None = None,
        target_link_uri: str | None = None,
    ) -> dict[str, str]:
        """The login-initiation parameters that start a launch with ``claims``.

        The claims travel in a signed ``login_hint``, so the platform keeps no state.
        """
        hint = self._hints.sign({"claims": dict(claims)}, 3600)
        params = {
            "iss": self.issuer,
            "login_hint": hint,
            "target_link_uri": target_link_uri or self.tool_launch_url,
            "lti_message_hint": secrets.token_urlsafe(8),
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }
        if storage_target:
            params["lti_storage_target"] = storage_target
        return params

    def login_url(self, claims: Mapping[str, Any], **kwargs: Any) -> str:
        return self.tool_login_url + "?" + urlencode(self.login_params(claims, **kwargs))

    def authenticate(self, params: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """Answer an OIDC authentication request: where to post, and the form to post."""
        if params.get("client_id") != self.client_id:
            raise PlatformError("unknown client_id")
        if params.get("redirect_uri") != self.tool_launch_url:
            raise PlatformError("redirect_uri is not registered for this tool")
        if params.get("response_type") != "id_token" or params.get("scope") != "openid":
            raise PlatformError("unsupported response_type or scope")
        if params.get("response_mode") != "form_post" or not params.get("nonce"):
            raise PlatformError("response_mode must be form_post and a nonce is required")
        try:
            hint = self._hints.verify(params.get("login_hint", ""))
        except ValueError as exc:
            raise PlatformError(f"bad login_hint: {exc}") from exc
        token = self.id_token(hint["claims"], nonce=params["nonce"])
        return self.tool_launch_url, {"id_token": token, "state": params.get("state", "")}

    def full_claims(self, claims: Mapping[str, Any], nonce: str) -> dict[str, Any]:
        """The claims the platform signs: the example's, plus what the platform adds."""
        now = int(time.time())
        body = copy.deepcopy(dict(claims))
        # What the platform itself vouches for replaces whatever the example carried.
        body.update(
            {
                "iss": self.issuer,
                "aud": self.client_id,
                "azp": self.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": nonce,
                CLAIM + "deployment_id": self.deployment_id,
                CLAIM + "target_link_uri": self.tool_launch_url,
            }
        )
        body.setdefault(CLAIM + "version", "1.3.0")
        body.setdefault(CLAIM + "message_type", "LtiResourceLinkRequest")
        body.setdefault(CLAIM + "roles", [])
        if body[CLAIM + "message_type"] == "LtiResourceLinkRequest":
            body.setdefault(CLAIM + "resource_link", {"id": "simulated-link"})
        return body

    def id_token(
        self,
        claims: Mapping[str, Any],
        *,
        nonce: str,
        headers: Mapping[str, Any] | None = None,
        key: str | None = None,
        algorithm: str = "RS256",
        raw: bool = False,
    ) -> str:
        """A signed ``id_token``. ``raw`` signs ``claims`` exactly as given (tests)."""
        body = dict(claims) if raw else self.full_claims(claims, nonce)
        header = {"kid": self.kid, **(headers or {})}
        return jwt.encode(body, key or self.private_key, algorithm=algorithm, headers=header)

    # -- deep linking -----------------------------------------------------------------------

    def deep_linking_claims(
        self, base: Mapping[str, Any], return_url: str, data: str | None = None
    ) -> dict[str, Any]:
        """Turn an example launch into a deep-linking request returning to ``return_url``."""
        claims = copy.deepcopy(dict(base))
        claims.pop(CLAIM + "resource_link", None)
        claims[CLAIM + "message_type"] = "LtiDeepLinkingRequest"
        settings: dict[str, Any] = {
            "deep_link_return_url": return_url,
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": False,
        }
        if data is not None:
            settings["data"] = data
        claims[DL_CLAIM + "deep_linking_settings"] = settings
        return claims

    # -- LTI 1.1 --------------------------------------------------------------------------

    def lti11_form(
        self,
        params: Mapping[str, Any],
        *,
        url: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        secret: str | None = None,
    ) -> dict[str, str]:
        """An LTI 1.1 launch form, OAuth1 HMAC-SHA1 signed with the consumer secret."""
        if not self.lti11_key or not self.lti11_secret:
            raise PlatformError("this platform has no LTI 1.1 key and secret")
        fields = {
            k: str(v)
            for k, v in params.items()
            if not k.startswith("oauth_") and k not in ("_source",)
        }
        fields.setdefault("lti_message_type", "basic-lti-launch-request")
        fields.setdefault("lti_version", "LTI-1p0")
        client = Client(
            self.lti11_key,
            client_secret=secret or self.lti11_secret,
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=SIGNATURE_TYPE_BODY,
            timestamp=str(timestamp) if timestamp is not None else None,
            nonce=nonce,
        )
        _, _, body = client.sign(
            url or self.tool_launch_url,
            http_method="POST",
            body=fields,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        from urllib.parse import parse_qsl

        return dict(parse_qsl(body or "", keep_blank_values=True))


def example_claims(example: ExampleLaunch, **overrides: Any) -> dict[str, Any]:
    """An example's claims with the simulator's overrides (context id, title, user)."""
    claims = copy.deepcopy(dict(example.claims))
    claims.pop("_source", None)
    if example.version == "1.3":
        context = dict(claims.get(CLAIM + "context") or {})
        if overrides.get("context_id"):
            context["id"] = overrides["context_id"]
        if overrides.get("context_title"):
            context["title"] = overrides["context_title"]
        if context:
            claims[CLAIM + "context"] = context
    else:
        if overrides.get("context_id"):
            claims["context_id"] = overrides["context_id"]
        if overrides.get("context_title"):
            claims["context_title"] = overrides["context_title"]
    return claims


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
