"""Installation settings, read once from the environment and the instance folder.

Every variable is documented in ``docs/configuration.md``; keep the two in step.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting has a value the tool cannot use; the message names the variable."""


TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def _flag(environ: dict[str, str], name: str, default: bool = False) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise SettingsError(f"{name} must be 1 or 0 (got {raw!r})")


def _int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number (got {raw!r})") from None


SECRET_KEY_FILE = "secret.key"


@dataclass(frozen=True)
class Settings:
    """What one installation runs with."""

    instance: Path
    base_url: str
    secret_key: str
    database_url: str
    redis_url: str | None = None
    dev: bool = False
    allow_private_urls: bool = False
    plugins: tuple[str, ...] | None = None
    session_lifetime: int = 3600
    state_lifetime: int = 600
    nonce_lifetime: int = 3600
    clock_leeway: int = 60
    jwks_cache_lifetime: int = 3600
    http_timeout: float = 5.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base_host(self) -> str:
        """The tool's own host (and port, where one is given), lower case."""
        return (urlsplit(self.base_url).netloc or "").lower()

    def url(self, path: str) -> str:
        """An absolute URL on the tool for ``path`` (which starts with ``/``)."""
        return self.base_url.rstrip("/") + path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, create: bool = False) -> Settings:
        """Read settings from ``LTIPRO_*`` variables.

        ``create`` makes the instance folder and generates a secret key into it when
        ``LTIPRO_SECRET_KEY`` is unset (what ``ltipro init`` does); otherwise a missing key
        is an error that says how to make one.
        """
        env = dict(os.environ if environ is None else environ)
        instance = Path(env.get("LTIPRO_INSTANCE") or "instance").resolve()
        dev = _flag(env, "LTIPRO_DEV")
        if create:
            instance.mkdir(parents=True, exist_ok=True)
        secret_key = env.get("LTIPRO_SECRET_KEY") or _read_or_make_key(instance, create)
        if not secret_key:
            raise SettingsError(
                "LTIPRO_SECRET_KEY is not set and the instance folder "
                f"{instance} has no {SECRET_KEY_FILE}: run `ltipro init` first"
            )
        if len(secret_key) < 32:
            raise SettingsError("LTIPRO_SECRET_KEY must be at least 32 characters long")
        port = env.get("LTIPRO_PORT", "8000")
        base_url = env.get("LTIPRO_BASE_URL") or (f"http://localhost:{port}" if dev else "")
        if not base_url:
            raise SettingsError(
                "LTIPRO_BASE_URL is not set: give the public https:// URL of this tool "
                "(or set LTIPRO_DEV=1 for a local development server)"
            )
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"LTIPRO_BASE_URL must be an http(s) URL (got {base_url!r})")
        if parts.scheme != "https" and not dev:
            raise SettingsError(
                "LTIPRO_BASE_URL must use https:// outside development mode: LMSs post "
                "launches only to secure tools and browsers drop the session cookie otherwise"
            )
        plugins_raw = env.get("LTIPRO_PLUGINS")
        plugins = (
            tuple(p.strip() for p in plugins_raw.split(",") if p.strip())
            if plugins_raw is not None
            else None
        )
        database_url = env.get("LTIPRO_DATABASE_URL") or f"sqlite:///{instance / 'ltipro.db'}"
        return cls(
            instance=instance,
            base_url=base_url.rstrip("/"),
            secret_key=secret_key,
            database_url=database_url,
            redis_url=env.get("LTIPRO_REDIS_URL") or None,
            dev=dev,
            allow_private_urls=_flag(env, "LTIPRO_ALLOW_PRIVATE_URLS") or dev,
            plugins=plugins,
            session_lifetime=_int(env, "LTIPRO_SESSION_LIFETIME", 3600),
            clock_leeway=_int(env, "LTIPRO_CLOCK_LEEWAY", 60),
            jwks_cache_lifetime=_int(env, "LTIPRO_JWKS_CACHE_LIFETIME", 3600),
        )


def _read_or_make_key(instance: Path, create: bool) -> str:
    path = instance / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    if not create:
        return ""
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
