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
from urllib.parse import urlencode, urlsplit

import jwt
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

from ltipro.crypto import Signer, generate_rsa_key, private_key_object
from ltipro.extension import ExampleLaunch

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
REGISTRABLE_MESSAGES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")


class PlatformError(ValueError):
    """An authentication request the platform refuses (as a real LMS would)."""


class RegistrationRefused(PlatformError):
    """A dynamic registration the platform refuses, as OpenID Connect registration errors go.

    ``error`` is the OAuth error code (``invalid_token``, ``invalid_client_metadata``,
    ``invalid_redirect_uri``), ``status`` the HTTP status of the answer.
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class ToolRegistration:
    """A tool that registered itself with the platform (LTI Dynamic Registration)."""

    client_id: str
    deployment_id: str
    client_name: str
    metadata: dict[str, Any]


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
    # What the platform says of itself in its OpenID configuration.
    product_family_code: str = "ltipro-simulator"
    placements: tuple[str, ...] = ("course_navigation",)
    registrations: list[ToolRegistration] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.private_key:
            self.kid, self.private_key, self.public_jwk = generate_rsa_key()
        self._hints = Signer(self.hint_secret, "simulator-login-hint")
        self._registration_tokens = Signer(self.hint_secret, "simulator-registration-token")
        self._spent_registration_tokens: set[str] = set()

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
        signing_key: Any = (
            private_key_object(key or self.private_key) if algorithm.startswith("RS") else key
        )
        return jwt.encode(body, signing_key, algorithm=algorithm, headers=header)

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

    # -- dynamic registration ----------------------------------------------------------------

    def openid_configuration(self) -> dict[str, Any]:
        """The platform's OpenID configuration, as LMSs publish it for dynamic registration."""
        base = self.issuer.rstrip("/")
        resource_link: dict[str, Any] = {"type": "LtiResourceLinkRequest"}
        if self.placements:
            resource_link["placements"] = list(self.placements)
        return {
            "issuer": self.issuer,
            "authorization_endpoint": base + "/auth",
            "token_endpoint": base + "/token",
            "jwks_uri": base + "/jwks.json",
            "registration_endpoint": base + "/registrations",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "name",
                "given_name",
                "family_name",
                "email",
            ],
            PLATFORM_CONFIGURATION: {
                "product_family_code": self.product_family_code,
                "version": "1.0",
                "messages_supported": [resource_link, {"type": "LtiDeepLinkingRequest"}],
            },
        }

    def issue_registration_token(self, lifetime: int = 3600) -> str:
        """A single-use token allowing one tool to register (the ``registration_token``)."""
        return self._registration_tokens.sign({"jti": secrets.token_urlsafe(12)}, lifetime)

    def register_tool(self, authorization: str | None, metadata: Any) -> dict[str, Any]:
        """Answer a tool's registration request: check it, record it, hand out a client id.

        ``authorization`` is the request's ``Authorization`` header. The platform then
        launches the newly registered tool (its client id, deployment and URLs), as an
        LMS would after an administrator installed a tool by dynamic registration.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RegistrationRefused(
                "invalid_token", "A registration token is required (Authorization: Bearer).", 401
            )
        try:
            body = self._registration_tokens.verify(token.strip())
        except ValueError as exc:
            raise RegistrationRefused(
                "invalid_token", f"The registration token is not valid ({exc}).", 401
            ) from exc
        token_id = str(body.get("jti"))
        if token_id in self._spent_registration_tokens:
            raise RegistrationRefused(
                "invalid_token", "The registration token was already used.", 401
            )
        tool = _check_tool_metadata(metadata)
        self._spent_registration_tokens.add(token_id)
        registration = ToolRegistration(
            client_id="dynamic-" + secrets.token_hex(6),
            deployment_id="dynamic-deployment-" + secrets.token_hex(4),
            client_name=str(metadata["client_name"]),
            metadata=copy.deepcopy(metadata),
        )
        self.registrations.append(registration)
        self.client_id = registration.client_id
        self.deployment_id = registration.deployment_id
        self.tool_login_url = str(metadata["initiate_login_uri"])
        self.tool_launch_url = str(tool.get("target_link_uri") or metadata["redirect_uris"][0])
        answer = copy.deepcopy(metadata)
        answer["client_id"] = registration.client_id
        answer[TOOL_CONFIGURATION] = {**tool, "deployment_id": registration.deployment_id}
        return answer

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


def _absolute_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _on_domain(url: str, domain: str) -> bool:
    # The tool's domain may or may not name its port.
    parts = urlsplit(url)
    domain = domain.lower()
    return parts.netloc.lower() == domain or (parts.hostname or "") == domain


def _check_tool_metadata(metadata: Any) -> dict[str, Any]:
    """The tool configuration of a registration request, checked as LMSs check it."""

    def refuse(description: str, error: str = "invalid_client_metadata") -> RegistrationRefused:
        return RegistrationRefused(error, description)

    if not isinstance(metadata, dict):
        raise refuse("The registration must be a JSON object.")
    if metadata.get("application_type", "web") != "web":
        raise refuse("application_type must be web.")
    response_types = metadata.get("response_types")
    if not isinstance(response_types, list) or "id_token" not in response_types:
        raise refuse("response_types must include id_token.")
    grants = metadata.get("grant_types") or []
    if not isinstance(grants, list) or not {"implicit", "client_credentials"} <= set(grants):
        raise refuse("grant_types must include implicit and client_credentials.")
    if metadata.get("token_endpoint_auth_method") != "private_key_jwt":
        raise refuse("token_endpoint_auth_method must be private_key_jwt.")
    if not isinstance(metadata.get("client_name"), str) or not metadata["client_name"].strip():
        raise refuse("client_name is required.")
    for name in ("initiate_login_uri", "jwks_uri"):
        if not _absolute_url(metadata.get(name)):
            raise refuse(f"{name} must be an absolute URL.")
    redirect_uris = metadata.get("redirect_uris")
    if (
        not isinstance(redirect_uris, list)
        or not redirect_uris
        or not all(_absolute_url(u) for u in redirect_uris)
    ):
        raise refuse("redirect_uris must list absolute URLs.", "invalid_redirect_uri")
    tool = metadata.get(TOOL_CONFIGURATION)
    if not isinstance(tool, dict):
        raise refuse(f"{TOOL_CONFIGURATION} is required.")
    domain = tool.get("domain")
    if not isinstance(domain, str) or not domain.strip():
        raise refuse("The tool configuration must name the tool's domain.")
    target = tool.get("target_link_uri")
    if target is not None and not _absolute_url(target):
        raise refuse("target_link_uri must be an absolute URL.")
    messages = tool.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise refuse("messages must be a list of objects.")
    for message in messages:
        if message.get("type") not in REGISTRABLE_MESSAGES:
            raise refuse(f"The platform does not offer {message.get('type')!r} messages.")
        if message.get("target_link_uri") is not None and not _absolute_url(
            message["target_link_uri"]
        ):
            raise refuse("A message's target_link_uri must be an absolute URL.")
    claims = tool.get("claims", [])
    if not isinstance(claims, list) or not all(isinstance(c, str) for c in claims):
        raise refuse("claims must be a list of claim names.")
    for url in redirect_uris:
        if not _on_domain(url, domain):
            raise refuse(f"{url} is not on the tool's domain {domain}.", "invalid_redirect_uri")
    for url in (metadata["initiate_login_uri"], target):
        if url is not None and not _on_domain(url, domain):
            raise refuse(f"{url} is not on the tool's domain {domain}.")
    return dict(tool)


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
