"""Test doubles that ship with faxline, for its tests and for yours: :mod:`.clock` (a clock
that moves only when told) and :mod:`.relay` (a lossy UDP relay for SIP and media)."""
