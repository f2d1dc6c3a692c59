"""The network seam of the edge's WebRTC stack: which host addresses ICE may gather.

aioice (under aiortc) gathers host candidates from every interface it finds, through the module function
``aioice.ice.get_host_addresses``; neither aioice nor aiortc offers a public option to restrict them. This
module is the one place that replaces that function. Two callers use it:

- the agent's ``--ice-host ADDRESS`` option (a clinic machine with several interfaces, where only one reaches
  the viewers), through :func:`use_host_addresses`;
- the tests, which run two aiortc peers in one process and must keep every packet on loopback, through
  :func:`use_loopback_only`.

The replacement is process-wide (aioice reads the module attribute at each gathering) and idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aioice.ice

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class _FixedHostAddresses:
    """Stands in for ``aioice.ice.get_host_addresses``, answering a fixed list."""

    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = list(addresses)

    def __call__(self, use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in self.addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    def __repr__(self) -> str:
        return f"_FixedHostAddresses({self.addresses!r})"


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Make ICE gather host candidates on exactly ``addresses`` (IPv4 or IPv6 literals)."""
    if not addresses:
        raise ValueError("at least one host address is needed")
    previous = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _FixedHostAddresses(addresses)
    logger.info("ICE host addresses: %s -> %s", previous, list(addresses))


def use_loopback_only() -> None:
    """Keep all ICE traffic on 127.0.0.1 (in-process tests; a single-machine demo)."""
    use_host_addresses([LOOPBACK])
