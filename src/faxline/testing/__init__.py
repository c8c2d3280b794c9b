"""Test doubles that ship with faxline, for its tests and for yours."""
