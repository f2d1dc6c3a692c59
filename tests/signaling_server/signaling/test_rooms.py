"""signaling_server.signaling.rooms: a member's writer against a socket that fails (the network is the seam)."""

from __future__ import annotations

import asyncio
from typing import Any

from signaling_server.signaling.messages import Peer
from signaling_server.signaling.rooms import OUTBOX_LIMIT, Member
from tests.waiting import eventually


class Socket:
    """What a Member uses of an aiohttp WebSocketResponse: send_str, close. `fail` decides per text."""

    def __init__(self, fail: Any = None) -> None:
        self.sent: list[str] = []
        self.closes: list[tuple[int, bytes]] = []
        self.fail = fail or (lambda text: None)

    async def send_str(self, text: str) -> None:
        error = self.fail(text)
        if error is not None:
            raise error
        text.encode("utf-8")  # what aiohttp does first: a lone surrogate raises here
        self.sent.append(text)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closes.append((code, message))
        return True


def member(socket: Socket) -> Member:
    peer = Peer("p1", "expert", "Dr Wang")
    made = Member(peer, socket)  # type: ignore[arg-type]
    made.start()
    return made


async def test_a_message_that_cannot_be_encoded_is_dropped_and_the_writer_goes_on() -> None:
    socket = Socket()
    one = member(socket)
    one.deliver('{"a": "\ud800"}')
    one.deliver('{"a": 2}')
    await eventually(lambda: socket.sent == ['{"a": 2}'])
    assert one.writer is not None and not one.writer.done()
    await one.stop()
    assert one.writer.done() and socket.closes == []


async def test_any_other_error_of_one_message_is_dropped_too() -> None:
    socket = Socket(fail=lambda text: ValueError("odd") if "odd" in text else None)
    one = member(socket)
    for text in ("first", "odd", "last"):
        one.deliver(text)
    await eventually(lambda: socket.sent == ["first", "last"])
    await one.stop()


async def test_a_socket_that_fails_ends_the_writer_and_is_closed_so_the_member_leaves() -> None:
    socket = Socket(fail=lambda text: ConnectionResetError("Cannot write to closing transport"))
    one = member(socket)
    one.deliver("hello")
    await eventually(lambda: one.writer is not None and one.writer.done())
    assert one.writer is not None and one.writer.exception() is None
    await eventually(lambda: socket.closes == [(1011, b"send failed")])
    await one.stop()  # never raises, whatever became of the writer


async def test_a_member_that_does_not_read_is_closed_once_with_1008() -> None:
    blocked = asyncio.Event()

    class Stuck(Socket):
        async def send_str(self, text: str) -> None:
            await blocked.wait()

    socket = Stuck()
    one = member(socket)
    for n in range(OUTBOX_LIMIT + 50):
        one.deliver(f"m{n}")
    await eventually(lambda: socket.closes == [(1008, b"slow consumer")])
    blocked.set()
    await one.stop()
    assert socket.closes == [(1008, b"slow consumer")]
