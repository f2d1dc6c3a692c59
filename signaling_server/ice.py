"""The ICE configuration handed to pages and edge devices: STUN/TURN servers, short-lived TURN credentials, and
the ICE transport policy.

TURN credentials follow the TURN REST API convention that coturn checks with ``use-auth-secret`` /
``static-auth-secret``: the username is ``<expiry unix seconds>:<subject>`` and the password is
``base64(HMAC-SHA1(secret, username))``. The TURN server recomputes the password from the username and the shared
secret, and refuses a username whose expiry has passed, so the server never stores a credential and coturn never
calls back. The subject is the user's or the device's id: coturn's log then says who relayed what.

The lifetime bounds when a credential can open an allocation, not how long a call lasts: coturn checks the
expiry when an allocation is made, and keeps refreshing one made in time after its credential has expired
(tested against coturn 4.6.1). So a credential only has to be good from the moment it is fetched until the peer
connection gathers its candidates. The edge fetches one for each new peer connection; the console at the start of
a live session and again half an hour before the one it holds ends (a later reconnection uses it). Default 4 h
(``TELEUS_TURN_CREDENTIAL_SECONDS``): ample for clock skew between the server and coturn and for a page whose
timers a background tab slows down, while a leaked credential (good only for relaying through our coturn, under
its quotas) can open relays for a few hours at most.

PROTOCOL.md "Configuration"; docs/TURN.md. Tested by tests/signaling_server/test_ice.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from signaling_server.settings import Settings

TRANSPORT_POLICIES = ("all", "relay")


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: datetime


def turn_password(secret: str, username: str) -> str:
    """The password a TURN server with this shared secret expects for ``username`` (the REST API rule)."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def mint(secret: str, subject: str, now: datetime, lifetime_seconds: int) -> TurnCredential:
    """A credential for ``subject`` (a user or device id) good until ``now + lifetime_seconds``."""
    expiry = int(now.timestamp()) + lifetime_seconds
    username = f"{expiry}:{subject}"
    return TurnCredential(username, turn_password(secret, username), datetime.fromtimestamp(expiry, UTC))


def transport_policy(settings: Settings, site_code: str | None) -> str:
    """``relay`` when the server says so for everyone or for this site (its edges and its sonographers), else
    ``all``."""
    if settings.ice_transport_policy == "relay" or (site_code is not None and site_code in settings.relay_sites):
        return "relay"
    return "all"


def configuration(settings: Settings, subject: str, site_code: str | None, now: datetime) -> dict[str, Any]:
    """The body of ``GET /api/v1/config`` for ``subject``: ``ice_servers`` as RTCIceServer dictionaries,
    ``ice_transport_policy``, and ``expires_at`` (ISO 8601; null without TURN credentials)."""
    servers: list[dict[str, Any]] = [{"urls": url} for url in settings.ice_servers]
    expires_at = None
    if settings.turn_urls:
        cred = mint(settings.turn_secret, subject, now, settings.turn_credential_seconds)
        servers.append({"urls": list(settings.turn_urls), "username": cred.username, "credential": cred.credential})
        expires_at = cred.expires_at.isoformat()
    return {
        "ice_servers": servers,
        "ice_transport_policy": transport_policy(settings, site_code),
        "expires_at": expires_at,
    }
