"""Who may put DICOM objects into which site, and whose studies a reader may see.

Storing:  an edge device stores into its own site only. A signed-in admin or expert stores into the site given
          as `?site=` (id or code), or their own; a sonographer into their own site only. Trainers do not store.
Reading:  sonographers see their own site's studies; experts, trainers and admins see every site; devices
          only store, they never read back.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Site

STORING_ROLES = ("admin", "expert", "sonographer")


async def storing_site(db: AsyncSession, who: Caller, asked: str | None) -> str:
    """The site id `who` stores into, given the `?site=` they asked for (id or code); raises Forbidden."""
    wanted = await _site(db, asked) if asked else None
    if who.device is not None:
        if wanted is not None and wanted.id != who.device.site_id:
            raise errors.Forbidden("an edge device stores into its own site only")
        return who.device.site_id
    user = who.require_user(*STORING_ROLES)
    if wanted is None:
        if user.site_id is None:
            raise errors.InvalidRequest("say which site the objects come from: ?site=<site id or code>")
        return user.site_id
    if user.role == "sonographer" and wanted.id != user.site_id:
        raise errors.Forbidden("a sonographer stores into their own site only")
    return wanted.id


def reading_site(who: Caller) -> str | None:
    """The one site whose studies `who` may read, or None for every site; raises Forbidden for devices."""
    if who.device is not None:
        raise errors.Forbidden("edge devices store objects; they do not read them back")
    user = who.require_user()
    if user.role == "sonographer":
        if user.site_id is None:
            raise errors.Forbidden("this sonographer belongs to no site")
        return user.site_id
    return None


async def _site(db: AsyncSession, id_or_code: str) -> Site:
    site = await db.scalar(select(Site).where(or_(Site.id == id_or_code, Site.code == id_or_code)))
    if site is None:
        raise errors.InvalidRequest(f"no site {id_or_code!r}")
    return site
