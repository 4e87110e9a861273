"""Exceptions raised for the library's error codes, one class per family.

Every exception carries the numeric code (`.code`) and the library's own
message for the failure (`str(e)`, from sess_last_error).
"""
from ._native import lib


class SessionsError(Exception):
    """Any failure reported by libsessions."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class InvalidInput(SessionsError, ValueError):
    """A bad key, value, URI, option, secret, JSON text or header."""


class TypeMismatch(SessionsError, TypeError):
    """The value exists with another type than the one asked for."""


class StoreUnavailable(SessionsError):
    """The store could not be reached; nothing was loaded or saved."""


class TooLarge(SessionsError):
    """A session larger than the cookie or the store accepts; nothing was saved."""


class CookieTooLarge(TooLarge):
    """The Set-Cookie would exceed 4096 bytes (use a server-side store)."""


class ValueTooLarge(TooLarge):
    """The session exceeds max_data_bytes or what the store's server accepts."""


class StateError(SessionsError):
    """A call out of order, such as changing a session after finish()."""


class Unsupported(SessionsError):
    """A store scheme this build of the library does not contain."""


class Conflict(SessionsError):
    """concurrency=cas: the session changed since this request loaded it (or
    concurrency=merge gave up after many concurrent writes). Nothing was
    saved: retry the whole request."""


class CsrfError(SessionsError):
    """The CSRF token is missing, malformed or not this session's: answer 403.
    (Session.verify_csrf returns False instead of raising it.)"""


class InternalError(SessionsError):
    """A bug in libsessions: please report it."""


# SESS_* codes of include/sessions.h -> exception class.
CLASSES = {
    2: InvalidInput,    # SESS_E_INVALID_ARGUMENT
    3: TypeMismatch,    # SESS_E_TYPE_MISMATCH
    5: InvalidInput,    # SESS_E_BAD_URI
    6: InvalidInput,    # SESS_E_BAD_OPTION
    7: InvalidInput,    # SESS_E_BAD_SECRET
    8: Unsupported,     # SESS_E_UNSUPPORTED
    9: StoreUnavailable,
    10: CookieTooLarge,
    11: ValueTooLarge,
    12: InvalidInput,   # SESS_E_BAD_JSON
    13: InvalidInput,   # SESS_E_HEADER_TOO_LARGE
    14: StateError,
    15: InternalError,
    16: Conflict,
    17: CsrfError,      # SESS_E_CSRF
}


def check(rc):
    """Raises the exception of a failed call; returns rc (OK or NOT_FOUND)."""
    if rc in (0, 1):  # SESS_OK, SESS_NOT_FOUND
        return rc
    if rc == 4:  # SESS_E_NO_MEMORY
        raise MemoryError(lib.sess_last_error().decode("utf-8", "replace"))
    message = lib.sess_last_error().decode("utf-8", "replace") or \
        lib.sess_strerror(rc).decode("utf-8", "replace")
    raise CLASSES.get(rc, SessionsError)(rc, message)
