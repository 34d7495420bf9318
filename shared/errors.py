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


class NtlmRefused(AuthFailed):
    """The domain refuses NTLM logons (STATUS_NTLM_BLOCKED): the connector must use Kerberos."""


class SourceChanged(SyncError):
    """The file changed while being read: stored nothing, the next run picks it up."""

    cause = "changed_during_read"


class ChangedAtSource(SyncError):
    """A conditional write or delete found another version at the source than the one it was
    based on (or a file where none was expected): nothing was changed; a conflict to resolve."""

    cause = "changed_at_source"


class ScaiDriveChanged(Exception):
    """ScaiDrive's object is not the version a write was based on any more (or there is one
    where none was expected): nothing was written; the caller decides (a conflict, or a
    decision superseded). Control flow between storage and the transfer, never recorded."""


class Transient(SyncError):
    cause = "transient"
    permanent = False


class FileInUse(Transient):
    """Someone holds the file open at the source, so it cannot be replaced now: retried."""

    cause = "file_in_use"


class KerberosUnavailable(Transient):
    """Kerberos could not be used for now: no KDC of the realm found or answering, clocks
    apart. Retried; the connector's credentials are not blamed."""


class LinkUnreachable(Transient):
    """A DFS link whose target (a share, maybe on another file server) could not be reached."""
    cause = "link_unreachable"

    @classmethod
    def at(cls, path: str, error: SyncError, targets: list[str]) -> SyncError:
        """`error`, met following the DFS link at `path` to `targets`, as this failure (the
        account refused stays what it is)."""
        if isinstance(error, (AuthFailed, PermissionDenied)):
            return error
        where = " or ".join(targets) or "a share"
        return cls(f"the DFS link '{path}' leads to {where}, which could not be reached "
                   f"({error})", path)


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


# What each cause means to an admin, in plain words (the console and the API show this beside
# the server's own message, which stays as the detail).
PLAIN = {
    "permission_denied": "The service account may not read this (or write it back): give it "
                         "read access at the file server, or leave the item out.",
    "not_found": "It was gone by the time it was read (deleted or moved meanwhile); the next "
                 "run picks up what is there then.",
    "invalid_name": "Its name cannot be stored in ScaiDrive (a character or length the target "
                    "does not allow); rename it at the source.",
    "encoding": "Its name is not valid text in the source's encoding; rename it at the source.",
    "quota_exceeded": "The target share's quota is full: raise the quota or free space.",
    "auth_failed": "The source refused the connector's credentials (a changed or expired "
                   "password or secret): update them on the connector.",
    "changed_during_read": "It changed while being copied; nothing half-copied was kept, and "
                           "the next run copies the new version.",
    "changed_at_source": "It changed at the source after the run looked at it; nothing was "
                         "overwritten, and the next run compares the sides again.",
    "config_invalid": "The connector names something the source does not have (a site, a "
                      "library, a folder): correct the connector.",
    "encryption_unavailable": "The connector requires SMB encryption, and the file server "
                              "does not offer it: enable it at the server or relax the setting.",
    "transient": "The server or network failed for a moment; it is tried again.",
    "file_in_use": "Someone has it open at the file server, so it could not be replaced; it "
                   "is tried again.",
    "name_collision": "Another item of the source maps to the same name in ScaiDrive (names "
                      "that differ only in case or form); rename one of them.",
    "link_unreachable": "It is a DFS link (or lies behind one) whose target share could not be "
                        "reached; nothing synced from behind it is deleted meanwhile, and the "
                        "next run tries again.",
    "dead_lettered": "It failed every attempt (see the detail); the next run tries it again.",
}


def plain(cause: str) -> str:
    """The plain-words sentence for a failure cause (a generic one for an unknown cause)."""
    return PLAIN.get(cause, "It could not be synced; the detail says why, and the next run "
                            "tries it again.")
