"""Configuration: one frozen dataclass per section, loaded from TOML and CALLTRACK_* variables.

The file is optional (``--config`` or ``CALLTRACK_CONFIG``). Any key may be overridden by an
environment variable named ``CALLTRACK_<SECTION>_<KEY>`` in upper case, e.g.
``CALLTRACK_DATABASE_URL`` or ``CALLTRACK_HTTP_PORT``. Variables whose section we do not know
(``CALLTRACK_TEST_DATABASE_URL`` belongs to the test suite) are left alone; a known section
with an unknown key, or a value of the wrong type, raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration value is missing, unknown or malformed.

    Args:
        msg: what is wrong.
        path: the key path, e.g. ``("database", "url")``.
    """

    def __init__(self, msg: str, path: tuple[str, ...] = ()) -> None:
        self.path = path
        where = ".".join(path)
        super().__init__(f"{where}: {msg}" if where else msg)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///calltrack.db"
    # PostgreSQL connection pool; the DB thread pool is sized to match (pool_size + max_overflow).
    pool_size: int = 8
    max_overflow: int = 4
    # Group commit: how many queued writes one transaction may carry.
    max_batch: int = 256


@dataclass(frozen=True)
class HttpConfig:
    bind: str = "127.0.0.1"
    port: int = 8080
    # The URL providers and browsers use to reach us (behind a TLS proxy it differs from bind).
    public_base_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 64 * 1024
    # When set, the left-most X-Forwarded-For address is the client (only behind a proxy you run).
    trust_forwarded_for: bool = False


@dataclass(frozen=True)
class NumbersConfig:
    default_hold_seconds: int = 1800
    default_cooldown_seconds: int = 300
    # How often a process closes leases whose hold time has passed (and logs their expiry).
    sweep_interval_seconds: float = 30.0
    # A returning visitor's renewal is written at most this often (heartbeats in between
    # only move the in-memory deadline forward; see numbers/service.py).
    renew_write_interval_seconds: float = 60.0


@dataclass(frozen=True)
class RateLimitConfig:
    # Requests per minute, with a burst of the same size.
    per_ip_per_minute: int = 600
    per_site_per_minute: int = 60000
    # New pool leases one client address may take a minute (bursts of the same size). Past
    # it, the address's new visitors see the site's number: a script asking in a loop cannot
    # hold a whole pool and leave real visitors unattributed.
    new_leases_per_ip_per_minute: int = 30


@dataclass(frozen=True)
class LeadsConfig:
    # A call or form from a known person within this many days joins their open lead.
    repeat_window_days: int = 30
    # A caller who called the same pool number within this many days keeps that match.
    repeat_caller_days: int = 30
    # More distinct callers than this on one lease: the number has leaked (scraped page,
    # robocall list), and further calls on it are spam, not that visitor's.
    spam_callers_per_lease: int = 3
    # This many calls shorter than spam_short_call_seconds from one caller in a day: spam.
    spam_short_calls_per_day: int = 3
    spam_short_call_seconds: int = 10
    # Speed to lead: respond within the target; past the limit a lead is overdue.
    response_target_seconds: int = 300
    response_limit_seconds: int = 7200


@dataclass(frozen=True)
class TelephonyConfig:
    # How long the advertiser's phone rings before the caller hears busy.
    dial_timeout_seconds: int = 30
    # Signed JSON (Telnyx, our PBX format): how far a signature's timestamp may be from now.
    signature_tolerance_seconds: int = 300


@dataclass(frozen=True)
class OutboxConfig:
    """Outbound lead webhooks (to the advertiser's CRM), delivered from the outbox table."""

    # One attempt: connect, send, and read the answer's status within this.
    timeout_seconds: float = 10.0
    # Back-off after the n-th failure: base × 2^(n-1), at most max (each ±10%, fixed per delivery).
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 6 * 3600.0
    # After this many failed attempts a delivery is 'failed' (kept; resend it by API or CLI).
    # 18 attempts at the defaults span about two and a half days.
    max_attempts: int = 18
    # How often the dispatcher looks for due deliveries.
    poll_seconds: float = 1.0
    # Attempts in flight at once, in all and to one endpoint (a slow CRM holds only its share).
    max_in_flight: int = 32
    max_in_flight_per_endpoint: int = 4
    max_endpoints_per_account: int = 10
    # Settled deliveries (delivered, failed, cancelled) and their attempts are deleted after
    # this many days: the log is for looking into problems, and the bodies hold personal data.
    keep_days: int = 30
    # Allow targets on loopback, private and link-local addresses given literally (an
    # internal CRM). Off by default: an API key must not turn calltrack into a probe of the
    # network it runs in.
    allow_private_targets: bool = False


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    # "json" (one JSON object a line) or "text".
    format: str = "json"


@dataclass(frozen=True)
class CalltrackConfig:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    numbers: NumbersConfig = field(default_factory=NumbersConfig)
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    leads: LeadsConfig = field(default_factory=LeadsConfig)
    telephony: TelephonyConfig = field(default_factory=TelephonyConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


_SECTION_TYPES: dict[str, type[Any]] = typing.get_type_hints(CalltrackConfig)


def _coerce(value: Any, target: type[Any], path: tuple[str, ...]) -> Any:
    """Convert a TOML or environment value to the field's type, or raise ConfigError."""
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"expected true or false, got {value!r}", path)
    if target is int:
        if isinstance(value, (bool, float)):
            raise ConfigError(f"expected an integer, got {value!r}", path)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"expected an integer, got {value!r}", path) from None
    if target is float:
        if isinstance(value, bool):
            raise ConfigError(f"expected a number, got {value!r}", path)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number, got {value!r}", path) from None
    if target is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", path)
        return value
    raise ConfigError(f"unsupported type {target}", path)  # pragma: no cover


def _build_section(name: str, raw: Mapping[str, Any]) -> Any:
    cls = _SECTION_TYPES[name]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"unknown key (known: {known})", (name, key))
        kwargs[key] = _coerce(value, hints[key], (name, key))
    return cls(**kwargs)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> CalltrackConfig:
    """Load the configuration from an optional TOML file and the environment.

    Args:
        path: TOML file; when None, ``CALLTRACK_CONFIG`` names it, and without it only the
            defaults and the environment apply.
        environ: the environment (defaults to ``os.environ``).

    Returns:
        The frozen configuration.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, dict[str, Any]] = {name: {} for name in _SECTION_TYPES}
    file_path = path if path is not None else env.get("CALLTRACK_CONFIG")
    if file_path:
        try:
            data = tomllib.loads(Path(file_path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {file_path} not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {file_path} is not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"config file {file_path} cannot be read: {e.strerror}") from None
        for section, values in data.items():
            if section not in raw:
                known = ", ".join(sorted(raw))
                raise ConfigError(f"unknown section (known: {known})", (section,))
            if not isinstance(values, dict):
                raise ConfigError("expected a table", (section,))
            raw[section].update(values)
    for var, value in env.items():
        if not var.startswith("CALLTRACK_") or var == "CALLTRACK_CONFIG":
            continue
        rest = var[len("CALLTRACK_") :].lower()
        for section in raw:
            if rest.startswith(section + "_"):
                raw[section][rest[len(section) + 1 :]] = value
                break
    sections = {name: _build_section(name, values) for name, values in raw.items()}
    config = CalltrackConfig(**sections)
    _validate(config)
    return config


def _validate(config: CalltrackConfig) -> None:
    if config.http.max_body_bytes < 1024:
        raise ConfigError("must be at least 1024", ("http", "max_body_bytes"))
    if config.logging.format not in ("json", "text"):
        raise ConfigError("must be 'json' or 'text'", ("logging", "format"))
    if not config.database.url.startswith(("sqlite", "postgresql")):
        raise ConfigError("only sqlite:// and postgresql+psycopg:// URLs are supported", ("database", "url"))
    for key in ("repeat_window_days", "repeat_caller_days", "spam_callers_per_lease", "spam_short_calls_per_day"):
        if getattr(config.leads, key) < 1:
            raise ConfigError("must be at least 1", ("leads", key))
    if not 5 <= config.telephony.dial_timeout_seconds <= 600:
        raise ConfigError("must be between 5 and 600", ("telephony", "dial_timeout_seconds"))
    if not 30 <= config.telephony.signature_tolerance_seconds <= 3600:
        raise ConfigError("must be between 30 and 3600", ("telephony", "signature_tolerance_seconds"))
    o = config.outbox
    for key in ("timeout_seconds", "backoff_base_seconds", "poll_seconds"):
        if not 0 < getattr(o, key) <= 3600:
            raise ConfigError("must be above 0 and at most 3600", ("outbox", key))
    if o.backoff_max_seconds < o.backoff_base_seconds:
        raise ConfigError("must be at least backoff_base_seconds", ("outbox", "backoff_max_seconds"))
    for key in ("max_attempts", "max_in_flight", "max_in_flight_per_endpoint", "max_endpoints_per_account", "keep_days"):
        if getattr(o, key) < 1:
            raise ConfigError("must be at least 1", ("outbox", key))
    if config.numbers.default_hold_seconds <= 0:
        raise ConfigError("must be positive", ("numbers", "default_hold_seconds"))
