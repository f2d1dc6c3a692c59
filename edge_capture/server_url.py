"""Which server the edge may reach without TLS: one on its own machine, and no other unless told.

Everything the edge says goes to the server URL: its device credential on every request, stills and clips, the
recordings, the signaling socket (``https://`` → ``wss://``). Over ``http://`` all of it would cross the clinic's
LAN and the district's broadband in clear, readable and changeable by anyone on the path. So a non-loopback
server must be ``https://``; ``--allow-insecure-http`` (``allow_insecure_http``) lifts that for a lab or a network
the district fully controls, knowingly. A loopback server (the demo, a TLS-terminating proxy on the same PC) is
never on the wire. Names are not resolved: ``localhost`` counts as loopback, any other name does not.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from edge_capture.errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, allow_insecure_http: bool = False) -> str:
    """``url`` when the edge may use it; ConfigError ``bad_server_url`` or ``insecure_server`` otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ConfigError("bad_server_url", f"{url!r} is not a server URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            "bad_server_url",
            f"{url!r} is not a server URL: give https://host[:port] (the edge derives its WebSocket, wss://, from it)",
        )
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(host):
        raise ConfigError(
            "insecure_server",
            f"{url} is plain http to another machine: the device credential, the live video and the patients' "
            "images would cross the network in clear. Use https:// (or --allow-insecure-http on a lab network)",
        )
    return url
