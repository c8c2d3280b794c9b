"""The SIP side of the server: the user agent, trunks (outbound calls, registration) and
inbound calls answered into extensions. Fax call flows themselves live in `telephony`."""
