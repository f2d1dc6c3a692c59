"""edge_capture.cli: the secure defaults of `teleus edge` (docs/SECURITY.md §9): the device credential never on the
command line, no plain http to another machine unless told, the spool key made, rotated or required."""

from __future__ import annotations

import argparse
import io
import os
import stat
import sys
from pathlib import Path

import pytest

from edge_capture.agent import EdgeAgent, EdgeConfig
from edge_capture.cli import build_parser, config_from, read_credential, run
from edge_capture.errors import ConfigError
from edge_capture.sealing.keys import load
from edge_capture.sealing.sealed import read_sealed, write_sealed


@pytest.fixture(autouse=True)
def no_teleus_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TELEUS_"):
            monkeypatch.delenv(name)


def parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_the_credential_comes_from_a_file_stdin_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = tmp_path / "device.credential"
    credential.write_text("dev_1_from-a-file\n")
    os.chmod(credential, 0o600)
    assert config_from(parsed("--credential-file", str(credential))).credential == "dev_1_from-a-file"
    monkeypatch.setattr(sys, "stdin", io.StringIO("dev_1_from-stdin\n"))
    assert read_credential(parsed("--credential-file", "-"), env={}) == "dev_1_from-stdin"
    assert read_credential(parsed(), env={"TELEUS_DEVICE_CREDENTIAL": "dev_1_from-env"}) == "dev_1_from-env"
    monkeypatch.setenv("TELEUS_DEVICE_CREDENTIAL_FILE", str(credential))
    assert read_credential(parsed(), env={}) == "dev_1_from-a-file"


def test_a_credential_on_the_command_line_is_refused_and_none_at_all_too(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as refused:
        config_from(parsed("--credential", "dev_1_secret"))
    assert "process list" in str(refused.value) and "dev_1_secret" not in str(refused.value)
    with pytest.raises(SystemExit) as refused:
        config_from(parsed())
    assert "give --credential-file FILE (- for stdin) or TELEUS_DEVICE_CREDENTIAL" in str(refused.value)
    with pytest.raises(SystemExit) as refused:
        config_from(parsed("--credential-file", str(tmp_path / "nowhere")))
    assert "cannot read the credential file" in str(refused.value)
    assert "--credential-file" in build_parser().format_help() and "--credential " not in build_parser().format_help()


async def test_plain_http_to_another_machine_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEUS_DEVICE_CREDENTIAL", "dev_1_secret")
    with pytest.raises(SystemExit) as refused:
        config_from(parsed("--server", "http://10.20.30.40:8600"))
    assert "in clear" in str(refused.value)
    allowed = config_from(parsed("--server", "http://10.20.30.40:8600", "--allow-insecure-http"))
    assert allowed.allow_insecure_http and allowed.server_url == "http://10.20.30.40:8600"
    assert config_from(parsed("--server", "https://10.20.30.40:8600")).allow_insecure_http is False
    # The agent refuses it too, for whoever builds its configuration in code: before a key, a folder or a socket.
    agent = EdgeAgent(EdgeConfig("http://10.20.30.40:8600", "dev_1_secret", spool_dir=tmp_path / "outbox"))
    with pytest.raises(ConfigError) as caught:
        await agent.run()
    assert caught.value.code == "insecure_server" and not (tmp_path / "outbox").exists()
    assert not (tmp_path / "teleus-edge-spool.key").exists()


def test_new_spool_key_makes_the_key_then_rotates_it_and_exits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox, recordings = tmp_path / "outbox", tmp_path / "recordings"
    options = parsed("--spool", str(outbox), "--recordings", str(recordings), "--new-spool-key")
    assert run(options) == 0  # no credential needed: nothing talks to the server
    key_file = tmp_path / "teleus-edge-spool.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = load(key_file)
    outbox.mkdir()
    write_sealed(outbox / "1.2.3.dcm", b"a still", first.current)
    assert run(options) == 0
    assert "1 spooled files sealed again" in capsys.readouterr().out
    rotated = load(key_file)
    assert rotated.current != first.current and read_sealed(outbox / "1.2.3.dcm", rotated) == b"a still"


def test_a_named_spool_key_that_is_missing_stops_the_agent_with_status_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEUS_DEVICE_CREDENTIAL", "dev_1_secret")
    options = parsed("--spool", str(tmp_path / "outbox"), "--spool-key-file", str(tmp_path / "usb" / "edge.key"))
    assert run(options) == 4
    assert not (tmp_path / "usb").exists() and not (tmp_path / "outbox").exists()


def test_the_degradation_preference_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEUS_DEVICE_CREDENTIAL", "dev_1_secret")
    default = config_from(parsed()).encoding
    assert (default.degradation, default.adaptive_rate) == ("resolution", True)  # keep motion: docs/NETWORK.md
    chosen = config_from(parsed("--degradation", "framerate", "--no-adaptive-rate")).encoding
    assert (chosen.degradation, chosen.adaptive_rate) == ("framerate", False)
    monkeypatch.setenv("TELEUS_EDGE_DEGRADATION", "framerate")
    assert config_from(parsed()).encoding.degradation == "framerate"
    with pytest.raises(SystemExit):
        parsed("--degradation", "colour")
