"""calltrack/config.py: defaults, TOML loading, CALLTRACK_* overrides, errors naming the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from calltrack.config import (
    CalltrackConfig,
    ConfigError,
    DatabaseConfig,
    HttpConfig,
    LoggingConfig,
    NumbersConfig,
    RateLimitConfig,
    load_config,
)


def write(tmp_path: Path, text: str, name: str = "calltrack.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# --- defaults ---------------------------------------------------------------------------------


def test_defaults_with_empty_environment() -> None:
    cfg = load_config(environ={})
    assert cfg == CalltrackConfig()
    assert cfg.database.url == "sqlite:///calltrack.db"
    assert cfg.database.pool_size == 8
    assert cfg.database.max_overflow == 4
    assert cfg.database.max_batch == 256
    assert cfg.http.bind == "127.0.0.1"
    assert cfg.http.port == 8080
    assert cfg.http.public_base_url == "http://127.0.0.1:8080"
    assert cfg.http.max_body_bytes == 64 * 1024
    assert cfg.http.trust_forwarded_for is False
    assert cfg.numbers.default_hold_seconds == 1800
    assert cfg.numbers.default_cooldown_seconds == 300
    assert cfg.numbers.sweep_interval_seconds == 30.0
    assert cfg.numbers.renew_write_interval_seconds == 60.0
    assert cfg.ratelimit.per_ip_per_minute == 600
    assert cfg.ratelimit.per_site_per_minute == 60000
    assert cfg.logging.level == "INFO"
    assert cfg.logging.format == "json"


def test_config_is_frozen() -> None:
    cfg = load_config(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.http.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.http = HttpConfig()  # type: ignore[misc]


def test_environ_none_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLTRACK_HTTP_PORT", "9191")
    monkeypatch.delenv("CALLTRACK_CONFIG", raising=False)
    assert load_config().http.port == 9191


# --- TOML file --------------------------------------------------------------------------------


def test_toml_file_sets_every_section(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
[database]
url = "postgresql+psycopg://u:p@db/calltrack"
pool_size = 20
max_overflow = 0

[http]
bind = "0.0.0.0"
port = 9000
public_base_url = "https://ct.example.com"
max_body_bytes = 2048
trust_forwarded_for = true

[numbers]
default_hold_seconds = 900
default_cooldown_seconds = 120
sweep_interval_seconds = 5
renew_write_interval_seconds = 12.5

[ratelimit]
per_ip_per_minute = 10
per_site_per_minute = 1000

[logging]
level = "DEBUG"
format = "text"
""",
    )
    cfg = load_config(p, environ={})
    assert cfg.database == DatabaseConfig(url="postgresql+psycopg://u:p@db/calltrack", pool_size=20, max_overflow=0)
    assert cfg.http == HttpConfig(
        bind="0.0.0.0", port=9000, public_base_url="https://ct.example.com", max_body_bytes=2048, trust_forwarded_for=True
    )
    assert cfg.numbers == NumbersConfig(
        default_hold_seconds=900, default_cooldown_seconds=120, sweep_interval_seconds=5.0, renew_write_interval_seconds=12.5
    )
    assert isinstance(cfg.numbers.sweep_interval_seconds, float)
    assert cfg.ratelimit == RateLimitConfig(per_ip_per_minute=10, per_site_per_minute=1000)
    assert cfg.logging == LoggingConfig(level="DEBUG", format="text")


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, "[http]\nport = 8181\n")
    cfg = load_config(p, environ={})
    assert cfg.http.port == 8181
    assert cfg.http.bind == "127.0.0.1"
    assert cfg.database == DatabaseConfig()
    assert cfg.logging == LoggingConfig()


def test_path_may_be_a_str(tmp_path: Path) -> None:
    p = write(tmp_path, "[http]\nport = 8282\n")
    assert load_config(str(p), environ={}).http.port == 8282


def test_calltrack_config_env_names_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "[http]\nport = 8383\n")
    cfg = load_config(environ={"CALLTRACK_CONFIG": str(p)})
    assert cfg.http.port == 8383


def test_explicit_path_wins_over_calltrack_config(tmp_path: Path) -> None:
    a = write(tmp_path, "[http]\nport = 1111\n", "a.toml")
    b = write(tmp_path, "[http]\nport = 2222\n", "b.toml")
    assert load_config(a, environ={"CALLTRACK_CONFIG": str(b)}).http.port == 1111


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), environ={}) == CalltrackConfig()


def test_missing_file_raises_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as ei:
        load_config(missing, environ={})
    assert str(missing) in str(ei.value)


def test_missing_file_named_by_env_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(environ={"CALLTRACK_CONFIG": str(tmp_path / "gone.toml")})


@pytest.mark.parametrize(
    "text",
    [
        "[http\nport = 1\n",
        "[http]\nport = \n",
        "[http]\nport = 1\nport = 2\n",
        "just words",
        '[http]\nbind = "unterminated\n',
    ],
)
def test_invalid_toml_raises_config_error(tmp_path: Path, text: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match="not valid TOML") as ei:
        load_config(p, environ={})
    assert str(p) in str(ei.value)


def test_non_utf8_file_raises_config_error(tmp_path: Path) -> None:
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'[logging]\nlevel = "caf\xe9"\n')
    with pytest.raises(ConfigError):
        load_config(p, environ={})


def test_unknown_section_in_file(tmp_path: Path) -> None:
    p = write(tmp_path, "[htp]\nport = 1\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p, environ={})
    assert ei.value.path == ("htp",)
    assert str(ei.value).startswith("htp: unknown section")


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    p = write(tmp_path, "http = 5\n")
    with pytest.raises(ConfigError, match="expected a table") as ei:
        load_config(p, environ={})
    assert ei.value.path == ("http",)


def test_unknown_key_in_file_names_the_key_path(tmp_path: Path) -> None:
    p = write(tmp_path, "[http]\nprot = 8080\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p, environ={})
    assert ei.value.path == ("http", "prot")
    msg = str(ei.value)
    assert msg.startswith("http.prot: unknown key")
    assert "port" in msg  # the known keys are listed


@pytest.mark.parametrize(
    ("toml", "path"),
    [
        ('[http]\nport = "abc"\n', ("http", "port")),
        ("[http]\nport = true\n", ("http", "port")),
        ('[http]\ntrust_forwarded_for = "maybe"\n', ("http", "trust_forwarded_for")),
        ("[http]\ntrust_forwarded_for = 1\n", ("http", "trust_forwarded_for")),
        ("[logging]\nlevel = 5\n", ("logging", "level")),
        ("[database]\nurl = [\"sqlite://\"]\n", ("database", "url")),
        ('[numbers]\nsweep_interval_seconds = "soon"\n', ("numbers", "sweep_interval_seconds")),
        ("[ratelimit]\nper_ip_per_minute = [1]\n", ("ratelimit", "per_ip_per_minute")),
    ],
)
def test_wrong_types_in_file(tmp_path: Path, toml: str, path: tuple[str, str]) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, toml), environ={})
    assert ei.value.path == path
    assert str(ei.value).startswith(".".join(path) + ": expected")


def test_numeric_strings_in_file_are_coerced(tmp_path: Path) -> None:
    # The same coercion as for environment values: "9000" is an acceptable port.
    cfg = load_config(write(tmp_path, '[http]\nport = "9000"\ntrust_forwarded_for = "yes"\n'), environ={})
    assert cfg.http.port == 9000
    assert cfg.http.trust_forwarded_for is True


def test_float_for_integer_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, "[http]\nport = 8080.9\n"), environ={})
    assert ei.value.path == ("http", "port")


def test_bool_for_float_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, "[numbers]\nsweep_interval_seconds = true\n"), environ={})
    assert ei.value.path == ("numbers", "sweep_interval_seconds")


# --- environment ------------------------------------------------------------------------------


def test_env_overrides_defaults() -> None:
    cfg = load_config(
        environ={
            "CALLTRACK_HTTP_PORT": "9090",
            "CALLTRACK_DATABASE_URL": "sqlite:///other.db",
            "CALLTRACK_HTTP_TRUST_FORWARDED_FOR": "true",
            "CALLTRACK_NUMBERS_SWEEP_INTERVAL_SECONDS": "2.5",
            "CALLTRACK_RATELIMIT_PER_IP_PER_MINUTE": "42",
            "CALLTRACK_LOGGING_FORMAT": "text",
        }
    )
    assert cfg.http.port == 9090
    assert cfg.database.url == "sqlite:///other.db"
    assert cfg.http.trust_forwarded_for is True
    assert cfg.numbers.sweep_interval_seconds == 2.5
    assert cfg.ratelimit.per_ip_per_minute == 42
    assert cfg.logging.format == "text"


def test_env_overrides_file(tmp_path: Path) -> None:
    p = write(tmp_path, "[http]\nport = 9000\nbind = \"0.0.0.0\"\n")
    cfg = load_config(p, environ={"CALLTRACK_HTTP_PORT": "9001"})
    assert cfg.http.port == 9001
    assert cfg.http.bind == "0.0.0.0"  # untouched by the environment


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), ("On", True),
     ("0", False), ("false", False), ("No", False), ("off", False)],
)
def test_env_bool_spellings(text: str, expected: bool) -> None:
    assert load_config(environ={"CALLTRACK_HTTP_TRUST_FORWARDED_FOR": text}).http.trust_forwarded_for is expected


@pytest.mark.parametrize(
    ("var", "value", "path"),
    [
        ("CALLTRACK_HTTP_PORT", "abc", ("http", "port")),
        ("CALLTRACK_HTTP_PORT", "", ("http", "port")),
        ("CALLTRACK_HTTP_PORT", "8080.5", ("http", "port")),
        ("CALLTRACK_HTTP_TRUST_FORWARDED_FOR", "maybe", ("http", "trust_forwarded_for")),
        ("CALLTRACK_HTTP_TRUST_FORWARDED_FOR", "", ("http", "trust_forwarded_for")),
        ("CALLTRACK_NUMBERS_SWEEP_INTERVAL_SECONDS", "fast", ("numbers", "sweep_interval_seconds")),
        ("CALLTRACK_DATABASE_POOL_SIZE", "eight", ("database", "pool_size")),
    ],
)
def test_env_wrong_types(var: str, value: str, path: tuple[str, str]) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(environ={var: value})
    assert ei.value.path == path
    assert str(ei.value).startswith(".".join(path) + ": expected")
    assert repr(value) in str(ei.value)


@pytest.mark.parametrize(
    ("var", "key_path"),
    [
        ("CALLTRACK_HTTP_PROT", "http.prot"),
        ("CALLTRACK_DATABASE_URI", "database.uri"),
        ("CALLTRACK_LOGGING_LEVLE", "logging.levle"),
        ("CALLTRACK_RATELIMIT_PER_MINUTE", "ratelimit.per_minute"),
    ],
)
def test_env_unknown_key_of_known_section(var: str, key_path: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(environ={var: "1"})
    assert ".".join(ei.value.path) == key_path
    assert str(ei.value).startswith(key_path + ": unknown key")


@pytest.mark.parametrize(
    "var",
    [
        "CALLTRACK_TEST_DATABASE_URL",
        "CALLTRACK_SOMETHING_ELSE",
        "CALLTRACK_HTTP",  # no key at all: not "<section>_<key>"
        "CALLTRACK_HTTPS_PORT",  # "https" is not the "http" section
        "CALLTRACKHTTP_PORT",
        "HTTP_PORT",
    ],
)
def test_env_vars_outside_known_sections_are_ignored(var: str) -> None:
    assert load_config(environ={var: "not a number"}) == CalltrackConfig()


def test_env_calltrack_config_is_not_a_section_key(tmp_path: Path) -> None:
    # CALLTRACK_CONFIG names a file; it is never read as a key.
    p = write(tmp_path, "")
    assert load_config(environ={"CALLTRACK_CONFIG": str(p)}) == CalltrackConfig()


def test_env_keys_are_case_insensitive_in_variable_name() -> None:
    # Variable names are upper case by convention; they are lower-cased to find the key.
    assert load_config(environ={"CALLTRACK_http_port": "7070"}).http.port == 7070


# --- _validate --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_logging_format_accepted(fmt: str) -> None:
    assert load_config(environ={"CALLTRACK_LOGGING_FORMAT": fmt}).logging.format == fmt


@pytest.mark.parametrize("fmt", ["JSON", "xml", ""])
def test_logging_format_rejected(fmt: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(environ={"CALLTRACK_LOGGING_FORMAT": fmt})
    assert ei.value.path == ("logging", "format")
    assert str(ei.value).startswith("logging.format:")


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///calltrack.db", "postgresql+psycopg://u@h/db", "postgresql://u@h/db"]
)
def test_database_url_schemes_accepted(url: str) -> None:
    assert load_config(environ={"CALLTRACK_DATABASE_URL": url}).database.url == url


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgres://u@h/db", "", "calltrack.db", "http://x"])
def test_database_url_schemes_rejected(url: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(environ={"CALLTRACK_DATABASE_URL": url})
    assert ei.value.path == ("database", "url")
    assert str(ei.value).startswith("database.url:")


@pytest.mark.parametrize(("value", "ok"), [("1024", True), ("65536", True), ("1023", False), ("0", False), ("-5", False)])
def test_max_body_bytes_lower_bound(value: str, ok: bool) -> None:
    env = {"CALLTRACK_HTTP_MAX_BODY_BYTES": value}
    if ok:
        assert load_config(environ=env).http.max_body_bytes == int(value)
    else:
        with pytest.raises(ConfigError) as ei:
            load_config(environ=env)
        assert ei.value.path == ("http", "max_body_bytes")
        assert "1024" in str(ei.value)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_hold_seconds_must_be_positive(value: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(environ={"CALLTRACK_NUMBERS_DEFAULT_HOLD_SECONDS": value})
    assert ei.value.path == ("numbers", "default_hold_seconds")


def test_validation_applies_to_file_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, '[logging]\nformat = "yaml"\n'), environ={})
    assert ei.value.path == ("logging", "format")


# --- ConfigError ------------------------------------------------------------------------------


def test_config_error_message_without_path() -> None:
    e = ConfigError("boom")
    assert str(e) == "boom"
    assert e.path == ()


def test_config_error_message_with_path() -> None:
    e = ConfigError("bad", ("http", "port"))
    assert str(e) == "http.port: bad"
    assert e.path == ("http", "port")
