"""Installation settings, read once from the environment and the instance folder.

Every variable is documented in ``docs/configuration.md``; keep the two in step
(``tests/test_configuration_docs.py`` fails when a variable is missing there).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting has a value the tool cannot use; the message names the variable."""


SECRET_KEY_FILE = "secret.key"
DATABASE_FILE = "ltipro.db"
DEFAULT_PORT = 8000
MIN_SECRET_KEY_LENGTH = 32
REDIS_SCHEMES = ("redis", "rediss", "unix")
SMTP_SCHEMES = ("smtp", "smtps")
DEFAULT_MAIL_FROM = "ltipro@localhost"
DEFAULT_IMPORT_MAX_ROWS = 1000
MAX_IMPORT_ROWS = 100_000
DEFAULT_REQUEST_TIMEOUT = 30
MAX_REQUEST_TIMEOUT = 3600


def _flag(environ: Mapping[str, str], name: str, default: bool = False) -> bool:
    # Only 1 and 0: "false" or "no" read as true by some tools and as false by others,
    # and a development switch must never be on by a misreading.
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if value == "1":
        return True
    if value == "0":
        return False
    raise SettingsError(f"{name} must be 1 or 0 (got {raw!r})")


def _int(
    environ: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int = 0,
    maximum: int | None = None,
) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number (got {raw!r})") from None
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise SettingsError(f"{name} must be {allowed} (got {value})")
    return value


def instance_folder(environ: Mapping[str, str] | None = None) -> Path:
    """The instance folder ``LTIPRO_INSTANCE`` names (default ``./instance``), absolute."""
    env = os.environ if environ is None else environ
    return Path(env.get("LTIPRO_INSTANCE", "").strip() or "instance").resolve()


def dev_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``LTIPRO_DEV=1`` (development mode) is set."""
    return _flag(os.environ if environ is None else environ, "LTIPRO_DEV")


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
    port: int = DEFAULT_PORT
    session_lifetime: int = 3600
    state_lifetime: int = 600
    nonce_lifetime: int = 3600
    clock_leeway: int = 60
    jwks_cache_lifetime: int = 3600
    http_timeout: float = 5.0
    # Seconds a request may take before its answer starts; 0: no limit (ltipro.web.deadline).
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    # Whether the web app runs jobs in its own process; None: only on SQLite (ltipro.jobs).
    jobs_in_app: bool | None = None
    # Operations (ltipro.observability, docs/deploy.md): log lines, and who may read /metrics.
    log_format: str = "text"
    metrics_token: str | None = None
    metrics_allow: tuple[str, ...] = ()
    metrics_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # Outgoing mail (ltipro.mail): None keeps messages in the instance folder's outbox.
    smtp_url: str | None = None
    mail_from: str = DEFAULT_MAIL_FROM
    # The most meeting rows one import file may have (ltipro.imports; docs/import.md).
    import_max_rows: int = DEFAULT_IMPORT_MAX_ROWS

    @property
    def base_host(self) -> str:
        """The tool's own host (and port, where one is given), lower case."""
        return (urlsplit(self.base_url).netloc or "").lower()

    @property
    def secret_key_file(self) -> Path:
        """Where ``ltipro init`` keeps the generated secret key."""
        return self.instance / SECRET_KEY_FILE

    def url(self, path: str) -> str:
        """An absolute URL on the tool for ``path`` (which starts with ``/``)."""
        return self.base_url.rstrip("/") + path

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, create: bool = False
    ) -> Settings:
        """Read settings from ``LTIPRO_*`` variables.

        ``create`` makes the instance folder and generates a secret key into it when
        ``LTIPRO_SECRET_KEY`` is unset (what ``ltipro init`` does); otherwise a missing key
        is an error that says how to make one. Every variable is checked before anything
        is written, so a mistake leaves no half-made instance folder behind.
        """
        env = dict(os.environ if environ is None else environ)
        dev = _flag(env, "LTIPRO_DEV")
        port = _int(env, "LTIPRO_PORT", DEFAULT_PORT, minimum=1, maximum=65535)
        base_url = _base_url(env.get("LTIPRO_BASE_URL", "").strip(), dev=dev, port=port)
        session_lifetime = _int(env, "LTIPRO_SESSION_LIFETIME", 3600, minimum=60)
        clock_leeway = _int(env, "LTIPRO_CLOCK_LEEWAY", 60, maximum=600)
        jwks_cache_lifetime = _int(env, "LTIPRO_JWKS_CACHE_LIFETIME", 3600)
        request_timeout = _int(
            env, "LTIPRO_REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT, maximum=MAX_REQUEST_TIMEOUT
        )
        allow_private_urls = _flag(env, "LTIPRO_ALLOW_PRIVATE_URLS") or dev
        plugins_raw = env.get("LTIPRO_PLUGINS")
        plugins = (
            tuple(p.strip() for p in plugins_raw.split(",") if p.strip())
            if plugins_raw is not None
            else None
        )
        redis_url = env.get("LTIPRO_REDIS_URL", "").strip() or None
        jobs_in_app = (
            _flag(env, "LTIPRO_JOBS_IN_APP") if env.get("LTIPRO_JOBS_IN_APP", "").strip() else None
        )
        if redis_url is not None and urlsplit(redis_url).scheme not in REDIS_SCHEMES:
            raise SettingsError(
                f"LTIPRO_REDIS_URL must be a redis://, rediss:// or unix:// URL (got {redis_url!r})"
            )

        log_format, metrics_token, metrics_allow, metrics_dir = _operations(env, dev=dev)
        smtp_url, mail_from, import_max_rows = _mail_and_imports(env)

        instance = instance_folder(env)
        if instance.exists() and not instance.is_dir():
            raise SettingsError(f"LTIPRO_INSTANCE {instance} exists and is not a folder")
        database_url = env.get("LTIPRO_DATABASE_URL", "").strip() or (
            f"sqlite:///{instance / DATABASE_FILE}"
        )
        _check_database_url(database_url)
        # Used exactly as given: a key is never altered, or stored secrets would not decrypt.
        env_key = env.get("LTIPRO_SECRET_KEY", "")
        if env_key.strip() and len(env_key) < MIN_SECRET_KEY_LENGTH:
            raise SettingsError(
                f"LTIPRO_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters long"
            )
        if create:
            try:
                instance.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SettingsError(
                    f"cannot create the instance folder {instance} (LTIPRO_INSTANCE): "
                    f"{exc.strerror or exc}"
                ) from None
        secret_key = env_key if env_key.strip() else _read_or_make_key(instance, create)
        if not secret_key:
            raise SettingsError(
                "LTIPRO_SECRET_KEY is not set and the instance folder "
                f"{instance} has no {SECRET_KEY_FILE}: run `ltipro init` first"
            )
        if len(secret_key) < MIN_SECRET_KEY_LENGTH:
            raise SettingsError(
                f"the secret key in {instance / SECRET_KEY_FILE} is shorter than "
                f"{MIN_SECRET_KEY_LENGTH} characters"
            )
        return cls(
            instance=instance,
            base_url=base_url,
            secret_key=secret_key,
            database_url=database_url,
            redis_url=redis_url,
            dev=dev,
            allow_private_urls=allow_private_urls,
            plugins=plugins,
            port=port,
            session_lifetime=session_lifetime,
            clock_leeway=clock_leeway,
            jwks_cache_lifetime=jwks_cache_lifetime,
            request_timeout=request_timeout,
            jobs_in_app=jobs_in_app,
            log_format=log_format,
            metrics_token=metrics_token,
            metrics_allow=metrics_allow,
            metrics_dir=metrics_dir,
            smtp_url=smtp_url,
            mail_from=mail_from,
            import_max_rows=import_max_rows,
        )


LOG_FORMATS = ("json", "text")
MIN_METRICS_TOKEN_LENGTH = 16


def _operations(
    env: Mapping[str, str], *, dev: bool
) -> tuple[str, str | None, tuple[str, ...], Path | None]:
    """``LTIPRO_LOG_FORMAT``, ``LTIPRO_METRICS_TOKEN``, ``_ALLOW`` and ``_DIR``, checked."""
    import ipaddress

    log_format = env.get("LTIPRO_LOG_FORMAT", "").strip().lower() or ("text" if dev else "json")
    if log_format not in LOG_FORMATS:
        raise SettingsError(f"LTIPRO_LOG_FORMAT must be json or text (got {log_format!r})")
    token = env.get("LTIPRO_METRICS_TOKEN", "").strip() or None
    if token is not None and len(token) < MIN_METRICS_TOKEN_LENGTH:
        raise SettingsError(
            f"LTIPRO_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters long"
        )
    allow: list[str] = []
    for item in env.get("LTIPRO_METRICS_ALLOW", "").split(","):
        if not item.strip():
            continue
        try:
            allow.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise SettingsError(
                "LTIPRO_METRICS_ALLOW must be a comma-separated list of addresses or networks, "
                f"such as 127.0.0.1,10.0.0.0/8 (got {item.strip()!r})"
            ) from None
    folder = env.get("LTIPRO_METRICS_DIR", "").strip()
    return log_format, token, tuple(allow), Path(folder).resolve() if folder else None


def _mail_and_imports(env: Mapping[str, str]) -> tuple[str | None, str, int]:
    """``LTIPRO_SMTP_URL``, ``LTIPRO_MAIL_FROM`` and ``LTIPRO_IMPORT_MAX_ROWS``, checked."""
    smtp_url = env.get("LTIPRO_SMTP_URL", "").strip() or None
    if smtp_url is not None:
        try:
            parts = urlsplit(smtp_url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise SettingsError("LTIPRO_SMTP_URL is not a valid URL") from None
        if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
            # The URL may hold a password: name its scheme only.
            raise SettingsError(
                "LTIPRO_SMTP_URL must be smtp://[user:password@]host[:port] or "
                f"smtps://... (got a {parts.scheme or 'schemeless'} URL)"
            )
    mail_from = env.get("LTIPRO_MAIL_FROM", "").strip() or DEFAULT_MAIL_FROM
    if mail_from.count("@") != 1 or any(c.isspace() or c in "<>,;" for c in mail_from):
        raise SettingsError(
            f"LTIPRO_MAIL_FROM must be one email address such as lti@example.edu (got {mail_from!r})"
        )
    import_max_rows = _int(
        env, "LTIPRO_IMPORT_MAX_ROWS", DEFAULT_IMPORT_MAX_ROWS, minimum=1, maximum=MAX_IMPORT_ROWS
    )
    return smtp_url, mail_from, import_max_rows


def _base_url(raw: str, *, dev: bool, port: int) -> str:
    base_url = raw or (f"http://localhost:{port}" if dev else "")
    if not base_url:
        raise SettingsError(
            "LTIPRO_BASE_URL is not set: give the public https:// URL of this tool "
            "(or set LTIPRO_DEV=1 for a local development server)"
        )
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise SettingsError(f"LTIPRO_BASE_URL is not a valid URL (got {base_url!r})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"LTIPRO_BASE_URL must be an http(s) URL (got {base_url!r})")
    if parts.query or parts.fragment:
        raise SettingsError(f"LTIPRO_BASE_URL must not have a query or fragment (got {base_url!r})")
    if parts.scheme != "https" and not dev:
        raise SettingsError(
            "LTIPRO_BASE_URL must use https:// outside development mode: LMSs post "
            "launches only to secure tools and browsers drop the session cookie otherwise"
        )
    return base_url.rstrip("/")


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url

    from ltipro.storage.database import DatabaseURLError, async_url

    try:
        parsed = make_url(async_url(url))
    except DatabaseURLError as exc:
        raise SettingsError(str(exc)) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise SettingsError(
            "LTIPRO_DATABASE_URL names an in-memory SQLite database, which every command and "
            "worker would have its own empty copy of: give a file, sqlite:////path/ltipro.db"
        )


def _read_or_make_key(instance: Path, create: bool) -> str:
    path = instance / SECRET_KEY_FILE
    if path.exists():
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not key:
            raise SettingsError(
                f"{path} is empty: delete it and run `ltipro init` to make a new key "
                "(only if nothing was stored with the old one), or set LTIPRO_SECRET_KEY"
            )
        return key
    if not create:
        return ""
    key = secrets.token_urlsafe(48)
    # Created with 0600 from the start: no moment in which another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
