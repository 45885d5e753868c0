"""``pak tracker`` settings: defaults < TOML file < PAK_TRACKER_* environment < flags; bad
values refused naming the setting; --help lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pak.cli import main as pak_main
from pak.errors import ConfigError
from pak.settings import describe
from tracker.config import TrackerSettings, load_settings


def test_layers_in_order(tmp_path: Path) -> None:
    conf = tmp_path / "tracker.toml"
    conf.write_text('[tracker]\nbatch_size = 100\nbatch_max_age_ms = 20\ngroup = "from-file"\n'
                    'topic_root = "city/v1"\n[gateway]\nbatch_max = 3\n')
    env = {"PAK_TRACKER_BATCH_SIZE": "200", "PAK_TRACKER_GROUP": "from-env"}
    s = load_settings(["--config", str(conf), "--group", "from-flag", "--client-id", "trk-a"],
                      env=env)
    assert (s.batch_size, s.batch_max_age_ms, s.group, s.topic_root) == (
        200, 20, "from-flag", "city/v1")
    o = s.ingest_options()
    assert (o.batch_size, o.batch_max_age, o.group, o.client_id, o.topic_root) == (
        200, 0.02, "from-flag", "trk-a", "city/v1")
    defaults = load_settings([], env={})
    assert defaults == TrackerSettings()
    assert defaults.ingest_options().client_id.startswith("pak-tracker-")


@pytest.mark.parametrize(("argv", "env", "named"), [
    (["--batch-size", "0"], {}, "setting batch_size (flag --batch-size)"),
    ([], {"PAK_TRACKER_RECEIVE_MAXIMUM": "70000"},
     "setting receive_maximum (environment PAK_TRACKER_RECEIVE_MAXIMUM)"),
    (["--mqtt", "http://broker"], {}, "setting mqtt (flag --mqtt)"),
    (["--db", "mysql://x"], {}, "setting db (flag --db)"),
    (["--topic-root", "a/+/b"], {}, "setting topic_root"),
    (["--mqtt-password", "pw"], {}, "setting mqtt_password"),
])
def test_bad_values_are_refused_by_name(argv: list[str], env: dict[str, str],
                                        named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        load_settings(argv, env=env)


def test_password_from_the_environment_joins_the_url_user() -> None:
    s = load_settings(["--mqtt", "mqtt://pak-tracker@broker:1884"],
                      env={"PAK_TRACKER_MQTT_PASSWORD": "s3cret"})
    (b,) = s.broker().urls
    assert (b.host, b.port, b.username, b.password) == ("broker", 1884, "pak-tracker", "s3cret")
    assert "s3cret" not in b.redacted()


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        pak_main(["tracker", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--mqtt", "--db", "--config", "--batch-size", "--batch-max-age-ms",
                 "--receive-maximum", "--metrics-listen", "--mqtt-ca", "--mqtt-cert",
                 "--mqtt-key", "--mqtt-password-file", "PAK_TRACKER_"):
        assert flag in out


def test_a_bad_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert pak_main(["tracker", "--batch-size", "-5"]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_metrics_listen_and_its_deprecated_aliases(caplog: pytest.LogCaptureFixture) -> None:
    assert load_settings(["--metrics-listen", "127.0.0.1:9108"]).metrics_address() == \
        ("127.0.0.1", 9108)
    assert load_settings([]).metrics_address() is None
    assert "setting_deprecated" not in caplog.text
    old = load_settings(["--metrics-port", "9108", "--metrics-addr", "127.0.0.1"])
    assert old.metrics_address() == ("127.0.0.1", 9108)
    (rec,) = [r for r in caplog.records if r.getMessage() == "setting_deprecated"]
    assert rec.fields["use"] == "--metrics-listen 127.0.0.1:9108"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="setting metrics_listen"):
        load_settings(["--metrics-listen", "9108"])


def test_broker_password_from_a_file_and_several_brokers(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    s = load_settings(["--mqtt", "mqtt://a:1883,mqtt://b:1884", "--mqtt-username", "trk",
                       "--mqtt-password-file", str(pw)])
    urls = s.broker().urls
    assert [(u.host, u.port, u.username, u.password) for u in urls] == \
        [("a", 1883, "trk", "s3cret"), ("b", 1884, "trk", "s3cret")]
    assert "s3cret" not in str(describe(s))
    with pytest.raises(ConfigError, match="setting mqtt_password_file"):
        load_settings(["--mqtt", "mqtt://u@a", "--mqtt-password", "x",
                       "--mqtt-password-file", str(pw)])
    with pytest.raises(ConfigError, match="need an mqtts:// URL"):
        load_settings(["--mqtt", "mqtt://a", "--mqtt-ca", str(pw)])


def test_a_password_in_the_url_is_masked_in_the_description() -> None:
    s = load_settings(["--mqtt", "mqtt://trk:hunter2@broker:1883"])
    assert "hunter2" not in str(describe(s))
    assert describe(s)["mqtt"] == "mqtt://trk:***@broker:1883"
