"""The gateway's calls to its local services over pooled keep-alive connections, against a real socket server.

uvicorn closes a connection that has been idle 5 s; the client pools it for 15 s. A request that crosses the close is
reset unread, and the gateway sends it once more. A service that reads a request and then dies is not sent it again.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import aiohttp
import pytest

from service.gateway import call_local_service

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
BODY = b'{"items": []}'


class LocalService:
    """A loopback HTTP/1.1 server. With `reset_second`, each connection is reset (RST) when its second request
    arrives: on its first byte (the client is still writing) or once all of it is in (the client is reading). With
    `die_after_reading`, every request is read, then the connection closed cleanly without an answer."""

    def __init__(self, reset_second: str | None = None, die_after_reading: bool = False):
        assert reset_second in (None, "first byte", "whole request")
        self.reset_second, self.die_after_reading = reset_second, die_after_reading
        self.handled = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/scan"

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        while True:
            resetting = self.reset_second is not None and served == 1
            if resetting and self.reset_second == "first byte":
                await reader.read(1)
                return _reset(writer)
            try:
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(len(BODY))
            except asyncio.IncompleteReadError:
                return
            if resetting:
                return _reset(writer)
            self.handled += 1
            if self.die_after_reading:
                writer.close()
                return
            writer.write(ANSWER)
            await writer.drain()
            served += 1


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as the kernel does when a socket is closed with a request still unread in it."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _two_calls(service: LocalService, through_gateway: bool) -> list[str]:
    """Two POSTs (as BentoML's client sends; aiohttp resends no POST itself) from one session, so the second goes
    out on the first's pooled connection."""
    async def post(session: aiohttp.ClientSession, url: str) -> str:
        async with session.post(url, data=BODY) as response:
            return await response.text()

    async def calls() -> list[str]:
        async with service as url, aiohttp.ClientSession() as session:
            if through_gateway:
                return [await call_local_service(lambda: post(session, url)) for _ in range(2)]
            return [await post(session, url) for _ in range(2)]
    return asyncio.run(calls())


@pytest.mark.parametrize("when", ["first byte", "whole request"])
def test_a_request_reset_on_a_pooled_connection_is_sent_again(when):
    service = LocalService(reset_second=when)
    assert _two_calls(service, through_gateway=True) == ["ok", "ok"]
    assert service.handled == 2                            # the reset request never ran: nothing ran twice


@pytest.mark.parametrize("when", ["first byte", "whole request"])
def test_without_the_resend_the_reset_reaches_the_caller(when):
    with pytest.raises(aiohttp.ClientOSError):
        _two_calls(LocalService(reset_second=when), through_gateway=False)


def test_a_service_that_read_the_request_and_died_is_not_sent_it_again():
    service = LocalService(die_after_reading=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        _two_calls(service, through_gateway=True)
    assert service.handled == 1
