"""smbprotocol's errors mapped to our failure classes (`shared.errors`), in one place; and the
one reading of the server's times (`mtime_ns` of smbprotocol's datetimes, `filetime_ns` of the
FILETIMEs the replies read with `struct` hold), which the index keeps and must never change."""
from __future__ import annotations

import errno
from datetime import UTC, datetime, timedelta

from smbprotocol.exceptions import SMBConnectionClosed, SMBException

from shared import errors

END_OF_FILE = 0xC0000011

# NTSTATUS -> failure class. Anything not here from the server is a plain SyncError.
_STATUS: dict[int, type[errors.SyncError]] = {
    0xC0000022: errors.PermissionDenied,  # ACCESS_DENIED
    0xC0000061: errors.PermissionDenied,  # PRIVILEGE_NOT_HELD
    0xC0000034: errors.NotFound,  # OBJECT_NAME_NOT_FOUND
    0xC000003A: errors.NotFound,  # OBJECT_PATH_NOT_FOUND
    0xC000000F: errors.NotFound,  # NO_SUCH_FILE
    0xC0000225: errors.NotFound,  # NOT_FOUND (smbclient's answer for a missing share)
    0xC00000CC: errors.NotFound,  # BAD_NETWORK_NAME (no such share)
    0xC0000056: errors.NotFound,  # DELETE_PENDING
    0xC0000103: errors.NotFound,  # NOT_A_DIRECTORY (a parent is a file)
    0xC0000033: errors.InvalidName,  # OBJECT_NAME_INVALID
    0xC0000039: errors.InvalidName,  # OBJECT_PATH_INVALID
    0xC000003B: errors.InvalidName,  # OBJECT_PATH_SYNTAX_BAD
    0xC000006D: errors.AuthFailed,  # LOGON_FAILURE
    0xC000006A: errors.AuthFailed,  # WRONG_PASSWORD
    0xC0000064: errors.AuthFailed,  # NO_SUCH_USER
    0xC000006E: errors.AuthFailed,  # ACCOUNT_RESTRICTION
    0xC0000418: errors.NtlmRefused,  # NTLM_BLOCKED: the domain accepts Kerberos logons only
    0xC0000071: errors.AuthFailed,  # PASSWORD_EXPIRED
    0xC0000072: errors.AuthFailed,  # ACCOUNT_DISABLED
    0xC0000224: errors.AuthFailed,  # PASSWORD_MUST_CHANGE
    0xC0000234: errors.AuthFailed,  # ACCOUNT_LOCKED_OUT
    0xC0000193: errors.AuthFailed,  # ACCOUNT_EXPIRED
    0xC000006F: errors.AuthFailed,  # INVALID_LOGON_HOURS
    0xC0000070: errors.AuthFailed,  # INVALID_WORKSTATION
    0xC000015B: errors.AuthFailed,  # LOGON_TYPE_NOT_GRANTED
    0xC000007F: errors.QuotaExceeded,  # DISK_FULL
    0xC0000044: errors.QuotaExceeded,  # QUOTA_EXCEEDED
    END_OF_FILE: errors.SourceChanged,  # shorter than when opened
    0xC0000257: errors.LinkUnreachable,  # PATH_NOT_COVERED: no target of a DFS link answered
    0xC0000043: errors.Transient,  # SHARING_VIOLATION: someone holds it exclusively, for now
    0xC000009A: errors.Transient,  # INSUFFICIENT_RESOURCES
    0xC00000B5: errors.Transient,  # IO_TIMEOUT
}
# A refused logon in the words the admin acts on (the server's status stays in the message).
LOGON_REFUSED = {
    0xC000006D: "the server refused the username or password",
    0xC000006A: "the password is wrong",
    0xC0000064: "no such account",
    0xC0000071: "the account's password has expired: set a new one in the domain and here",
    0xC0000072: "the account is disabled in the domain: enable it (or use another account)",
    0xC0000193: "the account has expired in the domain: extend it (or use another account)",
    0xC0000224: "the account must change its password before logging on: set a new one",
    0xC0000234: "the account is locked out after failed logons: unlock it in the domain",
    0xC000006F: "the account may not log on at this time of day (logon hours)",
    0xC0000070: "the account may not log on from this computer (logon workstations)",
    0xC000015B: "the account may not log on over the network (user rights assignment)",
    0xC0000418: "the domain refuses NTLM logons: log on with Kerberos (smb_auth: kerberos)",
}
# A Kerberos logon that failed, told by krb5's words in the error (MIT and Heimdal say them
# alike), in the words the admin acts on.
KERBEROS_REFUSED: dict[str, tuple[type[errors.SyncError], str]] = {
    "Preauthentication failed": (errors.AuthFailed, "the domain refused the password"),
    "not found in Kerberos database": (errors.AuthFailed, "the domain has no such account"),
    "credentials have been revoked": (
        errors.AuthFailed, "the account is disabled, locked out or expired in the domain"),
    "Password has expired": (errors.AuthFailed, "the account's password has expired: set a "
                                                "new one in the domain and here"),
    "Cannot find KDC": (errors.KerberosUnavailable, "no Kerberos KDC is known for the realm: "
                                                    "the host's krb5.conf (KRB5_CONFIG) or the "
                                                    "domain's DNS SRV records must name one"),
    "Cannot contact any KDC": (errors.KerberosUnavailable,
                               "no Kerberos KDC of the realm answered"),
    "Clock skew too great": (errors.KerberosUnavailable, "this machine's clock is more than 5 "
                                                         "minutes off the domain's: sync it"),
    # The file server's answer to a new ticket that ends within its clock skew allowance.
    "Ticket expired": (errors.KerberosUnavailable, "the file server took the new Kerberos "
                                                   "ticket for expired: tickets must live "
                                                   "longer than the 5 minutes of clock skew "
                                                   "servers allow (the domain's policy; "
                                                   "krb5.conf ticket_lifetime), and the "
                                                   "clocks must agree"),
}
# The session or connection is gone: drop it so the next call logs on again.
_DEAD_SESSION = {0xC00000C9, 0xC0000203, 0xC000035C}  # NETWORK_NAME_DELETED, USER_SESSION_DELETED,
# NETWORK_SESSION_EXPIRED
_DEAD = (SMBConnectionClosed, ConnectionError, TimeoutError, EOFError)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_FILETIME = 116444736000000000  # 1970-01-01 as a FILETIME (100 ns ticks since 1601)
_US_RANGE = (-62135596800 * 10**6, 253402300799 * 10**6 + 999999)  # years 1-9999, as datetime


def mtime_ns(when: datetime) -> int:
    """smbprotocol gives datetimes (whole microseconds): the same value from list, stat and open."""
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def filetime_ns(ticks: int) -> int:
    """What smbprotocol's datetime gives through `mtime_ns` (whole microseconds), without the
    datetime."""
    us = (ticks - _EPOCH_FILETIME) // 10
    if not _US_RANGE[0] <= us <= _US_RANGE[1]:
        us = _US_RANGE[1]  # smbprotocol maps what datetime cannot hold to datetime.max
    return us * 1000


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "ntstatus", None) or getattr(exc, "status", None)


def connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, _DEAD) or _status(exc) in _DEAD_SESSION:
        return True
    if isinstance(exc, OSError) and exc.errno == errno.EBADF:
        return True  # a send after the receive thread closed the lost connection's socket
    # smbprotocol: a reply that never came, or a receive on a worker that stopped.
    return isinstance(exc, SMBException) and not _status(exc) and (
        "timeout" in str(exc).lower() or "not connected" in str(exc).lower())


def _kerberos_error(exc: BaseException, message: str, path: str | None
                    ) -> errors.SyncError | None:
    """A failed Kerberos logon as what the admin acts on; None for anything else."""
    text = str(exc)
    # "Server cifs/<name>@REALM not found in Kerberos database": a name the domain lacks.
    if "Server" in text and "not found in Kerberos database" in text:
        return errors.ConfigInvalid("server", "the domain knows no file server by this name "
                                              "(no service principal cifs/<name>): give its "
                                              f"name as the domain registered it ({message})")
    for needle, (kind, words) in KERBEROS_REFUSED.items():
        if needle in text:
            return kind(f"{words} (Kerberos: {message})", path)
    return None


def to_sync_error(exc: BaseException, path: str | None) -> errors.SyncError:
    """The one mapping from smbprotocol/socket errors to our failure classes."""
    if isinstance(exc, errors.SyncError):
        exc.path = exc.path if exc.path is not None else path
        return exc
    message = f"{type(exc).__name__}: {exc}"
    status = _status(exc)
    if status in LOGON_REFUSED:
        message = f"{LOGON_REFUSED[status]} ({message})"
    if status in _STATUS:
        return _STATUS[status](message, path)
    if connection_lost(exc) or (isinstance(exc, OSError) and not status):
        return errors.Transient(message, path)  # refused, reset, unreachable, timed out
    if (kerberos := _kerberos_error(exc, message, path)) is not None:
        return kerberos
    if "credits" in str(exc):
        return errors.Transient(message, path)  # the connection is busy: later is fine
    if any(word in type(exc).__name__ for word in ("Authentication", "Spnego", "BadMech")):
        return errors.AuthFailed(message, path)  # failed before the server said LOGON_FAILURE
    return errors.SyncError(message, path)
