"""DICOM peers: which modality may send objects by C-STORE, from where, with which certificate, into which site.

A peer (`DicomPeer`) is one calling AE title of one site. The AE title is a name anyone can type, so it is never
enough on its own: each A-ASSOCIATE-RQ is checked by :func:`admit`, in this order, and the first failure rejects
the association before anything is exchanged (the listener logs the reason and answers A-ASSOCIATE-RJ)::

    the calling AE title names a peer                        else unknown_ae
    the peer is enabled                                      else disabled
    the source address is inside one of its networks         else address_not_allowed
    it pins a certificate: the connection is TLS and the
      client certificate's SHA-256 is that pin               else certificate_required / certificate_mismatch
    fewer than max_associations of its associations open    else too_many_associations  (transient)

While an association lasts, the listener counts the bytes of each dataset as its P-DATA arrives and aborts the
association as soon as one passes the peer's `max_dataset_bytes` (`scp.py`). The admin actions below are shared
by the REST API (`peer_routes.py`) and the `teleus peer` command.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import DicomPeer, Site
from signaling_server.dicomstore import tls

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_DATASET_BYTES = 256 << 20  # an uncompressed ultrasound cine of a few hundred frames fits
DEFAULT_MAX_ASSOCIATIONS = 4
DATASET_BYTES_RANGE = (1 << 10, 1 << 40)
ASSOCIATIONS_RANGE = (1, 64)
MAX_NETWORKS = 32
_AE = re.compile(r"^[ -\[\]-~]{1,16}$")  # printable ASCII without '\' (PS3.5 AE value representation)


class Refusal(StrEnum):
    UNKNOWN_AE = "unknown_ae"
    DISABLED = "disabled"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    CERTIFICATE_REQUIRED = "certificate_required"
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    TOO_MANY_ASSOCIATIONS = "too_many_associations"


@dataclass(frozen=True)
class Knock:
    """What the listener knows of an association request before it is accepted."""

    calling_ae: str
    address: str
    certificate_sha256: str | None = None  # the TLS client certificate's pin; None: no TLS, or no certificate


@dataclass(frozen=True)
class PeerPolicy:
    """A peer as the listener's threads see it: a snapshot of its row, safe to share between threads."""

    id: str
    ae_title: str
    site_id: str
    networks: tuple[Network, ...]
    tls_client_sha256: str | None
    max_dataset_bytes: int
    max_associations: int
    enabled: bool

    @classmethod
    def of(cls, peer: DicomPeer) -> PeerPolicy:
        return cls(
            peer.id, peer.ae_title, peer.site_id, tuple(ipaddress.ip_network(n) for n in peer.networks),
            peer.tls_client_sha256, peer.max_dataset_bytes, peer.max_associations, peer.enabled,
        )  # fmt: skip

    @property
    def open_to_anywhere(self) -> bool:
        return any(network.prefixlen == 0 for network in self.networks)


def admit(knock: Knock, peer: PeerPolicy | None, open_associations: int) -> Refusal | None:
    """Whether an association request may be accepted: None, or why not (the order is the module's docstring)."""
    if peer is None:
        return Refusal.UNKNOWN_AE
    if not peer.enabled:
        return Refusal.DISABLED
    if not _inside(knock.address, peer.networks):
        return Refusal.ADDRESS_NOT_ALLOWED
    if peer.tls_client_sha256 is not None:
        if knock.certificate_sha256 is None:
            return Refusal.CERTIFICATE_REQUIRED
        if knock.certificate_sha256 != peer.tls_client_sha256:
            return Refusal.CERTIFICATE_MISMATCH
    if open_associations >= peer.max_associations:
        return Refusal.TOO_MANY_ASSOCIATIONS
    return None


def explain(refusal: Refusal, knock: Knock, peer: PeerPolicy | None) -> str:
    """The log's words for a refusal (never sent to the peer: it learns only that its AE title was refused)."""
    if refusal is Refusal.UNKNOWN_AE or peer is None:
        return "no DICOM peer has this AE title"
    if refusal is Refusal.DISABLED:
        return "the peer is disabled"
    if refusal is Refusal.ADDRESS_NOT_ALLOWED:
        return f"{knock.address} is outside {', '.join(map(str, peer.networks))}"
    if refusal is Refusal.CERTIFICATE_REQUIRED:
        return "the peer must come over TLS with its pinned client certificate"
    if refusal is Refusal.CERTIFICATE_MISMATCH:
        return f"client certificate SHA-256 {knock.certificate_sha256} is not the pinned {peer.tls_client_sha256}"
    return f"{peer.max_associations} associations of this peer are open already"


def _inside(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone does not matter here
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 peer on a dual-stack listener
    return any(ip.version == network.version and ip in network for network in networks)


async def policy_for(db: AsyncSession, ae_title: str) -> PeerPolicy | None:
    if not ae_title:
        return None
    peer = await db.scalar(select(DicomPeer).where(DicomPeer.ae_title == ae_title))
    return PeerPolicy.of(peer) if peer is not None else None


async def policy_by_id(db: AsyncSession, peer_id: str) -> PeerPolicy | None:
    peer = await db.get(DicomPeer, peer_id)
    return PeerPolicy.of(peer) if peer is not None else None


# --- administration -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """A client certificate to require: its SHA-256, and its subject when it was given as a certificate."""

    sha256: str
    subject: str | None = None

    @classmethod
    def parse(cls, *, certificate: str | None = None, sha256: str | None = None) -> Pin:
        """From a PEM certificate or a fingerprint; InvalidDicomPeer when neither reads."""
        try:
            if certificate:
                return cls(*tls.read_certificate(certificate))
            return cls(tls.parse_pin(sha256 or ""))
        except ValueError as exc:
            field = "tls_client_certificate" if certificate else "tls_client_sha256"
            raise errors.InvalidDicomPeer(field, str(exc)) from None


@dataclass(frozen=True)
class PeerChanges:
    """An admin's change to a peer; None (and unpin False) leaves a field as it is."""

    site_id: str | None = None
    networks: Sequence[str] | None = None
    pin: Pin | None = None
    unpin: bool = False
    max_dataset_bytes: int | None = None
    max_associations: int | None = None
    enabled: bool | None = None


async def create_peer(
    db: AsyncSession,
    ae_title: str,
    site_id: str,
    networks: Sequence[str],
    *,
    pin: Pin | None = None,
    max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES,
    max_associations: int = DEFAULT_MAX_ASSOCIATIONS,
    enabled: bool = True,
) -> DicomPeer:
    peer = DicomPeer(
        ae_title=parse_ae_title(ae_title),
        site_id=await _site(db, site_id),
        networks=parse_networks(networks),
        tls_client_sha256=pin.sha256 if pin else None,
        tls_client_subject=pin.subject if pin else None,
        max_dataset_bytes=_within("max_dataset_bytes", max_dataset_bytes, DATASET_BYTES_RANGE),
        max_associations=_within("max_associations", max_associations, ASSOCIATIONS_RANGE),
        enabled=enabled,
    )
    db.add(peer)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise errors.Conflict(f"a DICOM peer with AE title {peer.ae_title!r} exists already") from None
    log.info("DICOM peer %s (%s) created for site %s, networks %s", peer.ae_title, peer.id, peer.site_id, peer.networks)
    return peer


async def update_peer(db: AsyncSession, peer_id: str, changes: PeerChanges) -> DicomPeer:
    peer = await find_peer(db, peer_id)
    if changes.site_id is not None:
        peer.site_id = await _site(db, changes.site_id)
    if changes.networks is not None:
        peer.networks = parse_networks(changes.networks)
    if changes.unpin:
        peer.tls_client_sha256 = peer.tls_client_subject = None
    elif changes.pin is not None:
        peer.tls_client_sha256, peer.tls_client_subject = changes.pin.sha256, changes.pin.subject
    if changes.max_dataset_bytes is not None:
        peer.max_dataset_bytes = _within("max_dataset_bytes", changes.max_dataset_bytes, DATASET_BYTES_RANGE)
    if changes.max_associations is not None:
        peer.max_associations = _within("max_associations", changes.max_associations, ASSOCIATIONS_RANGE)
    if changes.enabled is not None:
        peer.enabled = changes.enabled
    await db.commit()
    log.info(
        "DICOM peer %s (%s): site %s, networks %s, certificate %s, limits %d bytes / %d associations, %s",
        peer.ae_title, peer.id, peer.site_id, peer.networks, peer.tls_client_sha256 or "none",
        peer.max_dataset_bytes, peer.max_associations, "enabled" if peer.enabled else "disabled",
    )  # fmt: skip
    return peer


async def list_peers(db: AsyncSession) -> list[DicomPeer]:
    return list(await db.scalars(select(DicomPeer).order_by(DicomPeer.ae_title)))


async def find_peer(db: AsyncSession, id_or_ae_title: str) -> DicomPeer:
    """A peer by id, or by AE title (what an admin at the command line knows)."""
    found = await db.scalar(
        select(DicomPeer).where((DicomPeer.id == id_or_ae_title) | (DicomPeer.ae_title == id_or_ae_title.strip()))
    )
    if found is None:
        raise errors.NotFound(f"no DICOM peer {id_or_ae_title!r}")
    return found


async def ae_titles_by_site(db: AsyncSession) -> dict[str, list[str]]:
    """Each site's peers' AE titles (for admins' view of the sites)."""
    titles: dict[str, list[str]] = {}
    query = select(DicomPeer.site_id, DicomPeer.ae_title).order_by(DicomPeer.ae_title)
    for site_id, ae_title in await db.execute(query):
        titles.setdefault(site_id, []).append(ae_title)
    return titles


def parse_ae_title(text: str) -> str:
    """An AE title: 1-16 printable ASCII characters without '\\', leading and trailing spaces insignificant."""
    title = text.strip()
    if not _AE.match(title):
        raise errors.InvalidDicomPeer("ae_title", "an AE title is 1-16 printable ASCII characters without '\\'")
    return title


def parse_networks(texts: Sequence[str]) -> list[str]:
    """CIDR networks ("10.1.2.0/24", "2001:db8::/48", or one address); host bits set are refused as a likely typo."""
    if isinstance(texts, str) or not texts or len(texts) > MAX_NETWORKS:
        raise errors.InvalidDicomPeer("networks", f'give 1 to {MAX_NETWORKS} networks, e.g. ["10.1.2.0/24"]')
    networks = []
    for text in texts:
        try:
            networks.append(str(ipaddress.ip_network(str(text).strip(), strict=True)))
        except ValueError as exc:
            raise errors.InvalidDicomPeer("networks", f"{text!r} is not a network: {exc}") from None
    return sorted(set(networks), key=networks.index)


def _within(name: str, value: int, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.InvalidDicomPeer(name, f"must be a whole number from {low} to {high}")
    return value


async def _site(db: AsyncSession, site_id: str) -> str:
    if await db.get(Site, site_id) is None:
        raise errors.InvalidDicomPeer("site_id", "no such site")
    return site_id
