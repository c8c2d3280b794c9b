"""Test doubles that ship with faxline, for its tests and for yours: :mod:`.clock` (a clock
that moves only when told), :mod:`.network` (sans-I/O endpoints connected in one process, on
a clock that jumps from event to event), :mod:`.relay` (a lossy UDP relay for SIP and media)
and :mod:`.waiting` (waiting for what another process does)."""
