"""edge_capture.server_url: plain http only to the edge's own machine, unless told otherwise."""

from __future__ import annotations

import pytest

from edge_capture.errors import ConfigError
from edge_capture.server_url import check_server_url


@pytest.mark.parametrize(
    "url",
    [
        "https://teleus.district.example",
        "https://10.1.2.3:8600/",
        "http://127.0.0.1:8600",  # the default: the server on this PC
        "http://127.8.9.10:8600",
        "http://localhost:8600/",
        "http://[::1]:8600",
    ],
)
def test_https_anywhere_and_http_over_loopback_are_allowed(url: str) -> None:
    assert check_server_url(url) == url


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3:8600", "http://teleus.district.example", "http://[2001:db8::1]:8600", "http://0.0.0.0:8600",
     "http://localhost.evil.example"],
)
def test_plain_http_to_another_machine_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_server_url(url)
    assert caught.value.code == "insecure_server" and "in clear" in caught.value.message
    assert "--allow-insecure-http" in caught.value.message
    assert check_server_url(url, allow_insecure_http=True) == url


@pytest.mark.parametrize("url", ["ws://10.1.2.3:8600", "wss://teleus.example", "teleus.example", "ftp://x", "http://",
                                 "https://host:port"])
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_server_url(url, allow_insecure_http=True)
    assert caught.value.code == "bad_server_url"
