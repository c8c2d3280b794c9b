"""faxline's SIP layer: sans-I/O protocol cores and a thin asyncio shell.

Wire formats (``parse`` + ``bytes()``, one error type each, see :mod:`.errors`):
:mod:`.uri`, :mod:`.headers`, :mod:`.message` (SIP), :mod:`.sdp` (SDP incl. T.38 image
streams), :mod:`.rtp` (RTP and the jitter buffer), :mod:`.udptl` (T.38 UDPTL with
redundancy).

Protocol cores (time and randomness are parameters, no sockets): :mod:`.negotiation`
(offer/answer), :mod:`.transaction` and :mod:`.transaction_layer` (RFC 3261 17),
:mod:`.dialog` (RFC 3261 12), :mod:`.digest` (RFC 2617/7616), :mod:`.admission` (who gets
an answer, and how often), and the user agent core: :mod:`.agent` (calls, re-INVITEs,
CANCEL, BYE, OPTIONS, REGISTER), :mod:`.uac` (its client half), :mod:`.call` (its
handles), :mod:`.events` (what it reports).

Shell: :mod:`.transport` (one UDP socket, one timer) and :mod:`.ua` (awaitables on asyncio).

The SIP parser is our own rather than a library's: see :mod:`.message` for why.
"""
