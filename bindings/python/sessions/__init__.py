"""libsessions for Python: HTTP sessions shared with C, C++ and nginx services.

    store = sessions.Store("cookie:", secrets=[SECRET])
    with store.begin(environ.get("HTTP_COOKIE")) as request:
        session = request.session("mysession")
        session["user_id"] = 42
        headers = [("Set-Cookie", v) for v in request.finish()]

Pure Python over the shared library (ctypes): no compiler needed.
"""
from ._native import library_path
from .backend import Backend, register_scheme
from .core import CookieOptions, Request, Session, Store
from .errors import (Conflict, CookieTooLarge, CsrfError, InternalError, InvalidInput, SessionsError,
                     StateError, StoreUnavailable, TooLarge, TypeMismatch, Unsupported,
                     ValueTooLarge)
from ._native import lib as _lib

__version__ = "0.4.0"
library_version = _lib.sess_version_string().decode()

__all__ = ["Store", "Request", "Session", "CookieOptions", "Backend", "register_scheme", "SessionsError", "InvalidInput",
           "TypeMismatch", "StoreUnavailable", "TooLarge", "CookieTooLarge", "ValueTooLarge",
           "StateError", "Unsupported", "Conflict", "CsrfError", "InternalError", "library_path",
           "library_version"]
