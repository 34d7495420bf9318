"""Failure classes. Every per-file failure is one of these, so it can be recorded by cause.

Permanent: retrying the same file in this run will not help (record it, go on).
Transient: the server or network hiccuped (retry, then redeliver).
"""
from __future__ import annotations


class SyncError(Exception):
    cause = "error"
    permanent = True

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class PermissionDenied(SyncError):
    cause = "permission_denied"


class NotFound(SyncError):
    cause = "not_found"


class InvalidName(SyncError):
    cause = "invalid_name"


class EncodingIssue(SyncError):
    cause = "encoding"


class QuotaExceeded(SyncError):
    cause = "quota_exceeded"


class AuthFailed(SyncError):
    cause = "auth_failed"


class SourceChanged(SyncError):
    """The file changed while being read: stored nothing, the next run picks it up."""

    cause = "changed_during_read"


class ChangedAtSource(SyncError):
    """A conditional write or delete found another version at the source than the one it was
    based on (or a file where none was expected): nothing was changed; a conflict to resolve."""

    cause = "changed_at_source"


class Transient(SyncError):
    cause = "transient"
    permanent = False


class FileInUse(Transient):
    """Someone holds the file open at the source, so it cannot be replaced now: retried."""

    cause = "file_in_use"


class ListingFailed(SyncError):
    """The source's root could not be listed: the whole run fails, with the listing's cause."""

    def __init__(self, cause: str, message: str):
        super().__init__(message, "")
        self.cause = cause


class ConfigInvalid(SyncError):
    """The configuration names something the source does not have (a site, a library)."""

    cause = "config_invalid"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class EncryptionUnavailable(ConfigInvalid):
    """`smb_encryption: required`, but the server offers no encryption: refused, never sent in
    plaintext (the credentials neither: this is decided before logging on)."""

    cause = "encryption_unavailable"

    def __init__(self, message: str):
        super().__init__("smb_encryption", message)
