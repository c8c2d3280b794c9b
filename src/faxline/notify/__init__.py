"""Telling people and programs what happened: the outbox's senders (signed webhooks)."""
