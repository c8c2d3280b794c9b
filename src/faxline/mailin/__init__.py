"""Faxes by email: an SMTP server (aiosmtpd) that turns mail from known people into faxes."""
