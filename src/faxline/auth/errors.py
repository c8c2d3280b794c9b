"""Errors of the auth layer; the API maps each to a UAPI error code in one place."""

from __future__ import annotations


class AuthError(Exception):
    """Base of the auth layer's errors."""


class InvalidToken(AuthError):
    """Missing, unknown or expired access token."""


class InvalidClient(AuthError):
    """Unknown client id or wrong secret at the token endpoint."""


class NotFound(AuthError):
    """The user, extension or fax does not exist, or lies outside the caller's context."""


class Forbidden(AuthError):
    """Inside the caller's context, but not allowed."""


class ExtensionInvalid(AuthError):
    """A malformed extension number, or `@self`."""


class FaxNotEnabled(AuthError):
    """The extension exists and may be used, but fax is not enabled on it."""
