"""Settings.from_env: every variable, its default, and the errors for bad values."""

from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from service import cli
from service.config import ConfigError, Settings
from store.client import connect, is_cluster_url, parse_cluster_url

VARS = [
    "REDIS_URL",
    "LEAF7_HOST",
    "LEAF7_PORT",
    "LEAF7_DATA_DIR",
    "LEAF7_EXPIRED_RETENTION",
    "LEAF7_MAX_BODY",
    "LEAF7_MAX_SOURCE",
    "LEAF7_PUBLIC_URL",
    "LEAF7_REDIS_MAX_CONNECTIONS",
    "LEAF7_WORKERS",
    "LEAF7_REDIS_TIMEOUT",
    "LEAF7_PIPELINE_BATCH",
    "LEAF7_CHECK_BATCH",
    "LEAF7_FSYNC",
    "LEAF7_ACCESS_LOG",
    "LEAF7_SHUTDOWN_TIMEOUT",
]

INT_VARS = [
    ("LEAF7_PORT", "port"),
    ("LEAF7_EXPIRED_RETENTION", "expired_retention"),
    ("LEAF7_MAX_BODY", "max_body"),
    ("LEAF7_MAX_SOURCE", "max_source"),
    ("LEAF7_REDIS_MAX_CONNECTIONS", "redis_max_connections"),
    ("LEAF7_WORKERS", "workers"),
    ("LEAF7_PIPELINE_BATCH", "pipeline_batch"),
    ("LEAF7_CHECK_BATCH", "check_batch"),
]


def test_defaults_when_unset() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.redis_url is None
    assert s.host == "127.0.0.1"
    assert s.port == 8000
    assert s.data_dir == Path("data")
    assert s.expired_retention == 7 * 86400
    assert s.max_body == 1024 * 1024
    assert s.max_source == 8 * 1024 * 1024
    assert s.public_url is None
    assert s.redis_max_connections == 64
    assert s.workers == 1
    assert s.redis_timeout == 2.0
    assert s.pipeline_batch == 4
    assert s.check_batch == 8
    assert s.fsync == "waitaof"
    assert s.access_log is True
    assert s.shutdown_timeout == 5.0


def test_empty_values_mean_default() -> None:
    assert Settings.from_env(dict.fromkeys(VARS, "")) == Settings()


def test_every_variable_is_parsed() -> None:
    env = {
        "REDIS_URL": "redis://cache:6380/2",
        "LEAF7_HOST": "0.0.0.0",  # noqa: S104
        "LEAF7_PORT": "9001",
        "LEAF7_DATA_DIR": "/var/lib/leaf7",
        "LEAF7_EXPIRED_RETENTION": "0",
        "LEAF7_MAX_BODY": "2048",
        "LEAF7_MAX_SOURCE": "4096",
        "LEAF7_PUBLIC_URL": "https://keys.example.com/",
        "LEAF7_REDIS_MAX_CONNECTIONS": "8",
        "LEAF7_WORKERS": "4",
        "LEAF7_REDIS_TIMEOUT": "0.25",
        "LEAF7_PIPELINE_BATCH": "16",
        "LEAF7_CHECK_BATCH": "12",
        "LEAF7_FSYNC": "None",
        "LEAF7_ACCESS_LOG": "off",
        "LEAF7_SHUTDOWN_TIMEOUT": "30",
    }
    assert Settings.from_env(env) == Settings(
        redis_url="redis://cache:6380/2",
        host="0.0.0.0",  # noqa: S104
        port=9001,
        data_dir=Path("/var/lib/leaf7"),
        expired_retention=0,
        max_body=2048,
        max_source=4096,
        public_url="https://keys.example.com",
        redis_max_connections=8,
        workers=4,
        redis_timeout=0.25,
        pipeline_batch=16,
        check_batch=12,
        fsync="none",
        access_log=False,
        shutdown_timeout=30.0,
    )


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEAF7_PORT", "8123")
    monkeypatch.setenv("LEAF7_DATA_DIR", "/srv/l7")
    s = Settings.from_env()
    assert s.port == 8123
    assert s.data_dir == Path("/srv/l7")
    assert s.redis_url is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://keys.example.com/", "https://keys.example.com"),
        ("https://keys.example.com///", "https://keys.example.com"),
        ("https://keys.example.com", "https://keys.example.com"),
        ("https://example.com/leaf7/", "https://example.com/leaf7"),
        ("/", None),
    ],
)
def test_public_url_trailing_slash_stripped(raw: str, expected: str | None) -> None:
    assert Settings.from_env({"LEAF7_PUBLIC_URL": raw}).public_url == expected


@pytest.mark.parametrize(("name", "attr"), INT_VARS)
@pytest.mark.parametrize("raw", ["abc", "1.5", "12k", "0x10"])
def test_non_integer_is_an_error(name: str, attr: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


@pytest.mark.parametrize(("name", "attr"), INT_VARS)
def test_negative_is_an_error(name: str, attr: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: "-1"})


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("LEAF7_PORT", 0),
        ("LEAF7_EXPIRED_RETENTION", 0),
        ("LEAF7_MAX_BODY", 1024),
        ("LEAF7_MAX_SOURCE", 1024),
        ("LEAF7_REDIS_MAX_CONNECTIONS", 2),
        ("LEAF7_WORKERS", 1),
    ],
)
def test_minimums(name: str, minimum: int) -> None:
    attr = dict(INT_VARS)[name]
    assert getattr(Settings.from_env({name: str(minimum)}), attr) == minimum
    with pytest.raises(ConfigError, match=f">= {minimum}"):
        Settings.from_env({name: str(minimum - 1)})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_cli_reports_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEAF7_PORT", "eighty")
    assert cli.main(["vendor", "create", "--name", "Acme"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "LEAF7_PORT" in err


@pytest.mark.parametrize(
    ("url", "nodes", "user", "password", "tls"),
    [
        ("redis+cluster://10.0.0.1:7000", [("10.0.0.1", 7000)], None, None, False),
        (
            "redis+cluster://a:7000,b:7001, c:7002/",
            [("a", 7000), ("b", 7001), ("c", 7002)],
            None,
            None,
            False,
        ),
        ("rediss+cluster://:s%40cret@h:6380", [("h", 6380)], None, "s@cret", True),
        ("REDIS+CLUSTER://app:pw@[::1]:7000", [("::1", 7000)], "app", "pw", False),
    ],
)
def test_cluster_urls(
    url: str, nodes: list[tuple[str, int]], user: str | None, password: str | None, tls: bool
) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url
    parsed = parse_cluster_url(url)
    assert (list(parsed.nodes), parsed.username, parsed.password, parsed.tls) == (
        nodes,
        user,
        password,
        tls,
    )
    assert isinstance(connect(url), RedisCluster)


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://host",
        "redis+cluster://host:port",
        "redis+cluster://host:0",
        "redis+cluster://a:7000,,b:7001",
        "redis+cluster://a:7000/1",
        "redis+cluster://a:7000?ssl=true",
    ],
)
def test_bad_cluster_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": url})


def test_plain_urls_are_not_cluster_urls() -> None:
    for url in ["redis://h:6379/0", "rediss://h:6380", "unix:///tmp/v.sock"]:
        assert not is_cluster_url(url)
        assert not isinstance(connect(url), RedisCluster)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("LEAF7_PIPELINE_BATCH", "0"),
        ("LEAF7_CHECK_BATCH", "0"),
        ("LEAF7_REDIS_TIMEOUT", "0"),
        ("LEAF7_REDIS_TIMEOUT", "0.01"),
        ("LEAF7_REDIS_TIMEOUT", "two"),
        ("LEAF7_REDIS_TIMEOUT", "nan"),
        ("LEAF7_REDIS_TIMEOUT", "inf"),
        ("LEAF7_SHUTDOWN_TIMEOUT", "-1"),
        ("LEAF7_FSYNC", "always"),
        ("LEAF7_ACCESS_LOG", "maybe"),
    ],
)
def test_bad_operational_values(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("0", False)])
def test_access_log_switch(raw: str, expected: bool) -> None:
    assert Settings.from_env({"LEAF7_ACCESS_LOG": raw}).access_log is expected
