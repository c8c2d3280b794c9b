"""faxline's SIP layer: sans-I/O protocol cores and a thin asyncio shell.

Wire formats (``parse`` + ``bytes()``, one error type each, see :mod:`.errors`):
:mod:`.uri`, :mod:`.headers`, :mod:`.message` (SIP), :mod:`.sdp` (SDP incl. T.38 image
streams), :mod:`.rtp` (RTP and the jitter buffer), :mod:`.udptl` (T.38 UDPTL with
redundancy).

Protocol cores (time is a parameter, no sockets): :mod:`.negotiation` (offer/answer),
:mod:`.transaction` and :mod:`.transaction_layer` (RFC 3261 17), :mod:`.dialog` (RFC 3261
12), :mod:`.digest` (RFC 2617/7616).

Shell: :mod:`.transport` (one UDP socket, one timer) and :mod:`.ua` (calls on asyncio).

The SIP parser is our own rather than a library's: see :mod:`.message` for why.
"""
