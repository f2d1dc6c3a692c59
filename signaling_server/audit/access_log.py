"""The server's access log, without query strings: a QIDO-RS search carries patient names and IDs in its query
(`?PatientName=张^三`), and aiohttp's default line (`%r`, the request line) would write them to the log.

One line per request: peer address, method, the path still percent-encoded (no query string; a path holds ids,
never names; encoded, it cannot break the line), HTTP version, status, bytes sent, seconds. No Referer (the
console's pages send none: `Referrer-Policy: no-referrer`) and no User-Agent. Who read what is the audit trail's
job, not the access log's.
"""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs',
            request.remote,
            request.method,
            request.rel_url.raw_path,
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
        )
