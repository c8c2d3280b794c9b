"""REGISTER to a trunk, answered with a digest challenge, and refreshed before it expires."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from faxline.config import Settings
from faxline.directory.provision import apply, parse
from faxline.gateway.service import SipGateway
from faxline.sip.message import SipRequest, make_response, parse_message
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.files import FileStore

REALM = "carrier.test"


class Registrar(asyncio.DatagramProtocol):
    """A registrar on 127.0.0.1 that challenges, checks the digest, and grants 2 s."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.accepted: list[SipRequest] = []
        self.challenged = 0
        self.refreshed = asyncio.Event()  # set on the second accepted REGISTER

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = parse_message(data)
        assert isinstance(request, SipRequest) and request.method == "REGISTER"
        assert self.transport is not None
        authorization = request.headers.get("Authorization")
        if authorization is None or not self._valid(request, authorization):
            self.challenged += 1
            response = make_response(
                request,
                401,
                extra_headers=[("WWW-Authenticate", f'Digest realm="{REALM}", nonce="n0nce"')],
            )
        else:
            self.accepted.append(request)
            if len(self.accepted) >= 2:
                self.refreshed.set()
            response = make_response(request, 200, extra_headers=[("Expires", "2")])
        self.transport.sendto(bytes(response), addr)

    def _valid(self, request: SipRequest, header: str) -> bool:
        fields = dict(
            part.strip().split("=", 1) for part in header.removeprefix("Digest ").split(",")
        )
        fields = {k: v.strip('"') for k, v in fields.items()}
        ha1 = hashlib.md5(f"fax-user:{REALM}:s3cret".encode()).hexdigest()
        ha2 = hashlib.md5(f"REGISTER:{fields['uri']}".encode()).hexdigest()
        return fields.get("response") == hashlib.md5(f"{ha1}:n0nce:{ha2}".encode()).hexdigest()


def test_registers_with_digest_and_refreshes(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        transport, registrar = await loop.create_datagram_endpoint(
            Registrar, local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        settings = Settings(data_dir=tmp_path, sip_listen="127.0.0.1:0")
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
        sessions = session_factory(engine)
        with sessions() as s:
            apply(
                s,
                parse(
                    {
                        "trunks": [
                            {
                                "name": "carrier",
                                "uri": f"sip:127.0.0.1:{port}",
                                "username": "fax-user",
                                "password": "s3cret",
                                "register": True,
                                "registerExpires": 60,
                            }
                        ]
                    }
                ),
            )
            s.commit()
        # Refresh early so that the test sees the second REGISTER within seconds.
        gateway = SipGateway(
            settings, sessions, FileStore(settings.documents_dir), min_refresh_s=0.5
        )
        await gateway.start()
        try:
            await asyncio.wait_for(registrar.refreshed.wait(), 10)
        finally:
            await gateway.stop()
            transport.close()
            engine.dispose()
        return len(registrar.accepted), registrar.challenged

    accepted, challenged = asyncio.run(scenario())
    assert accepted >= 2  # registered, then refreshed before the 2 s ran out
    assert challenged >= 1
