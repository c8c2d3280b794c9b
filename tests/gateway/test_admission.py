"""The gateway's trust check, as the user agent core asks it: a stranger's INVITE gets one
stateless 403 before any transaction exists; a trunk's INVITE reaches the inbound rules."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from faxline.config import Settings
from faxline.directory.provision import apply, parse
from faxline.gateway.service import SipGateway
from faxline.sip.headers import Headers
from faxline.sip.message import SipRequest, parse_response
from faxline.sip.uri import SipUri
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.files import FileStore


def invite(source: tuple[str, int], target: tuple[str, int], number: str) -> bytes:
    host, port = source
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{host}-{number}")
    headers.add("From", f"<sip:caller@{host}>;tag=c")
    headers.add("To", f"<sip:{number}@{target[0]}>")
    headers.add("Call-ID", f"call-{host}-{number}")
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", f"<sip:caller@{host}:{port}>")
    return bytes(SipRequest("INVITE", SipUri(host=target[0], port=target[1], user=number), headers))


def test_strangers_are_refused_before_any_transaction(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], list[int], int]:
        settings = Settings(data_dir=tmp_path, sip_listen="127.0.0.1:0")
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
        sessions = session_factory(engine)
        with sessions() as s:
            apply(s, parse({"trunks": [{"name": "carrier", "uri": "sip:127.0.0.1:5999"}]}))
            s.commit()
        gateway = SipGateway(settings, sessions, FileStore(settings.documents_dir))
        await gateway.start()
        loop = asyncio.get_running_loop()
        sockets = []
        try:
            answers: dict[str, list[int]] = {}
            for ip in ("127.0.0.2", "127.0.0.1"):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((ip, 0))
                sock.setblocking(False)
                sockets.append(sock)
                await loop.sock_sendto(
                    sock,
                    invite(sock.getsockname(), gateway.ua.address, "5550123"),
                    gateway.ua.address,
                )
                statuses: list[int] = []
                while not statuses or statuses[-1] < 200:
                    data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
                    statuses.append(parse_response(data).status)
                answers[ip] = statuses
            transactions = gateway.ua.core.layer.transaction_count
        finally:
            for sock in sockets:
                sock.close()
            await gateway.stop()
            engine.dispose()
        return answers["127.0.0.2"], answers["127.0.0.1"], transactions

    stranger, trunk, transactions = asyncio.run(scenario())
    assert stranger == [403]  # no 100 Trying: nothing was created for it
    assert trunk == [100, 404]  # the trunk's INVITE reached the number lookup
    assert transactions == 1  # the trunk's INVITE transaction (awaiting its ACK)


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.9.8.7"])
def test_trunk_addresses_are_trusted(tmp_path: Path, ip: str) -> None:
    async def scenario() -> bool:
        settings = Settings(data_dir=tmp_path, sip_listen="127.0.0.1:0")
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
        sessions = session_factory(engine)
        spec = {"trunks": [{"name": "t", "uri": "sip:127.0.0.1", "addresses": ["10.9.0.0/16"]}]}
        with sessions() as s:
            apply(s, parse(spec))
            s.commit()
        gateway = SipGateway(settings, sessions, FileStore(settings.documents_dir))
        await gateway.start()
        try:
            return gateway.ua.core.layer.admission is not None and (
                gateway.ua.core.layer.admission.is_trusted(ip)
                and not gateway.ua.core.layer.admission.is_trusted("192.0.2.1")
            )
        finally:
            await gateway.stop()
            engine.dispose()

    assert asyncio.run(scenario())
