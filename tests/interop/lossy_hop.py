"""A lossy network path between two SIP peers, built from faxline.testing.relay.

SIP goes through one :class:`LossyRelay` whose rewrite hook is a tiny ALG for a two-party
path: each Contact is pointed at the relay's socket that faces the other peer (so in-dialog
requests come through it too), and each SDP stream is pointed at a media relay of its own,
opened on first sight of the stream. Every relay drops the same share of datagrams, each
with its own seed: SIP and media (RTP, UDPTL) alike.
"""

from __future__ import annotations

import dataclasses

from faxline.sip.errors import SdpParseError, SipParseError
from faxline.sip.message import parse_message
from faxline.sip.sdp import Connection, SessionDescription
from faxline.testing.relay import Address, Direction, LossyRelay


class LossyHop:
    """Peer A talks to the hop's side A, peer B to its side B; nothing goes around it."""

    def __init__(self, loss: float, seed: int) -> None:
        self.loss = loss
        self.seed = seed
        self.media: dict[tuple[str, int, str], LossyRelay] = {}
        self._sip: LossyRelay | None = None

    @classmethod
    async def open(
        cls,
        ports: tuple[int, int],
        peer_a: Address,
        peer_b: Address,
        *,
        loss: float,
        seed: int,
    ) -> LossyHop:
        """Listen for SIP on 127.0.0.1 ``ports`` (side A, side B)."""
        hop = cls(loss, seed)
        hop._sip = await LossyRelay.open(
            port_a=ports[0],
            port_b=ports[1],
            peer_a=peer_a,
            peer_b=peer_b,
            loss=loss,
            seed=seed,
            rewrite=hop._rewrite,
        )
        return hop

    @property
    def sip(self) -> LossyRelay:
        assert self._sip is not None
        return self._sip

    def media_relays(self, kind: str) -> list[LossyRelay]:
        """The relays of every ``kind`` ("audio", "image") stream seen so far."""
        return [relay for key, relay in self.media.items() if key[2] == kind]

    def close(self) -> None:
        self.sip.close()
        for relay in self.media.values():
            relay.close()

    async def _rewrite(self, direction: Direction, data: bytes) -> bytes | None:
        try:
            message = parse_message(data)
        except SipParseError:
            return data  # not ours to judge: the peer answers it
        a_to_b = direction is Direction.A_TO_B
        host, port = self.sip.address_b if a_to_b else self.sip.address_a
        contacts = message.contacts
        if contacts:
            message.headers.set_all(
                "Contact",
                [
                    str(
                        dataclasses.replace(c, uri=dataclasses.replace(c.uri, host=host, port=port))
                    )
                    for c in contacts
                ],
            )
        if message.body and message.content_type == "application/sdp":
            try:
                sdp = SessionDescription.parse(message.body)
            except SdpParseError:
                return bytes(message)
            for index, stream in enumerate(sdp.media):
                address = sdp.connection_address(stream)
                if stream.port == 0 or address is None:
                    continue
                relay = await self._media_relay((message.call_id, index, stream.media))
                if a_to_b:
                    relay.peer_a = (address, stream.port)
                    stream.port = relay.address_b[1]
                else:
                    relay.peer_b = (address, stream.port)
                    stream.port = relay.address_a[1]
                stream.connection = Connection(host)
            message.body = bytes(sdp)
        return bytes(message)

    async def _media_relay(self, key: tuple[str, int, str]) -> LossyRelay:
        relay = self.media.get(key)
        if relay is None:
            seed = self.seed + 100 * (len(self.media) + 1)
            relay = await LossyRelay.open(loss=self.loss, seed=seed)
            self.media[key] = relay
        return relay
