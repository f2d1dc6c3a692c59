"""The edge's side of the recordings REST API (recordings/RECORDINGS.md §1), with the device credential."""

from __future__ import annotations

import io
from typing import Any

import aiohttp

from edge_capture.errors import OffsetRefused, ServerError

CHUNK_HEADER = "X-Chunk-SHA256"


class RecordingApi:
    def __init__(self, base_url: str, credential: str, session: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.session = session
        self.headers = {"Authorization": f"Bearer {credential}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.base + path, headers=headers, timeout=self.timeout, **kwargs
        ) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                data = {"error": "bad_answer", "message": f"HTTP {response.status} without a JSON object"}
            if response.status >= 400:
                code, message = str(data.get("error", "unknown")), str(data.get("message", ""))
                if isinstance(data.get("offset"), int):
                    raise OffsetRefused(response.status, code, message, data["offset"])
                raise ServerError(response.status, code, message)
            return data

    async def create(self, consultation_id: str) -> dict[str, Any]:
        return await self._call("POST", "/recordings", json={"consultation_id": consultation_id})

    async def recording(self, recording_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/recordings/{recording_id}")

    async def file_status(self, recording_id: str, name: str) -> dict[str, Any]:
        return await self._call("GET", f"/recordings/{recording_id}/files/{name}")

    async def put_chunk(self, recording_id: str, name: str, offset: int, data: bytes, sha256: str) -> int:
        """Append ``data`` (whose SHA-256 is ``sha256``, hashed off the loop by the caller) at ``offset``;
        returns the server's new offset. OffsetRefused names the server's own."""
        answer = await self._call(
            "PUT",
            f"/recordings/{recording_id}/files/{name}",
            params={"offset": str(offset)},
            data=io.BytesIO(data),
            headers={CHUNK_HEADER: sha256, "Content-Type": "application/octet-stream"},
        )
        return int(answer["offset"])

    async def complete(self, recording_id: str, name: str, size: int, sha256: str) -> dict[str, Any]:
        return await self._call(
            "POST", f"/recordings/{recording_id}/files/{name}/complete", json={"size": size, "sha256": sha256}
        )

    async def end(self, recording_id: str, files: list[str], duration_seconds: float | None) -> dict[str, Any]:
        body = {"files": files, "duration_seconds": duration_seconds}
        return await self._call("POST", f"/recordings/{recording_id}/end", json=body)

    async def consultation_state(self, consultation_id: str) -> str | None:
        """The consultation's state as the server has it; None when the server does not know it."""
        try:
            data = await self._call("GET", f"/consultations/{consultation_id}")
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        return str(data["state"])
