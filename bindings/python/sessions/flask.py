"""A Flask SessionInterface on libsessions. Two lines switch an app:

    from sessions.flask import SessionInterface
    app.session_interface = SessionInterface(sessions.Store(uri, secrets=[...]))

`flask.session` is then the libsessions session (a dict of JSON-like values
plus bytes). A response with a 5xx status saves nothing, so a half-done
session never overwrites the stored one.

CSRF: init_app also registers the template global csrf_token() (for a
hidden field named csrf_token, or a meta tag a script copies into an
X-CSRF-Token header); @csrf_protect checks a view, csrf=True every view
but those marked @csrf_exempt:

    SessionInterface(store).init_app(app, csrf=True)
    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">

A request whose method is not GET, HEAD, OPTIONS or TRACE then needs one of
the session's tokens in the X-CSRF-Token header or the csrf_token form field,
else it is answered 403 before the view runs.
"""
import functools

import flask
from flask.sessions import SessionInterface as _FlaskInterface
from flask.sessions import SessionMixin

from .errors import SessionsError

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class FlaskSession(SessionMixin):  # a MutableMapping
    def __init__(self, native, request):
        self.native = native
        self.request = request

    def __getitem__(self, key):
        return self.native[key]

    def __setitem__(self, key, value):
        self.native[key] = value

    def __delitem__(self, key):
        del self.native[key]

    def __iter__(self):
        return iter(self.native)

    def __len__(self):
        return len(self.native)

    @property
    def new(self):
        return self.native.is_new

    @property
    def modified(self):
        return self.native.modified

    def regenerate_id(self):
        self.native.regenerate_id()

    def destroy(self):
        self.native.destroy()

    def add_flash(self, value, kind="_flash"):
        self.native.add_flash(value, kind)

    def flashes(self, kind="_flash"):
        return self.native.flashes(kind)

    @property
    def principal(self):
        return self.native.principal

    @principal.setter
    def principal(self, principal):
        self.native.principal = principal

    @property
    def handle(self):
        return self.native.handle

    def set_metadata(self, key, value):
        self.native.set_metadata(key, value)

    def get_metadata(self, key, default=None):
        return self.native.get_metadata(key, default)

    def csrf_token(self):
        return self.native.csrf_token()

    def verify_csrf(self, token):
        return self.native.verify_csrf(token)


class SessionInterface(_FlaskInterface):
    def __init__(self, store, cookie_name=None):
        self.store = store
        self.cookie_name = cookie_name

    def init_app(self, app, csrf=False):
        """Installs the interface on `app` (app.session_interface) and the
        template global csrf_token(); csrf=True checks the token before every
        request with an unsafe method (views marked @csrf_exempt aside).
        Returns the interface."""
        app.session_interface = self
        app.add_template_global(csrf_token, "csrf_token")
        if csrf:
            app.before_request(_check_csrf_before_request)
        return self

    def open_session(self, app, request):
        native_request = self.store.begin(request.headers.get("Cookie"))
        name = self.cookie_name or app.config.get("SESSION_COOKIE_NAME", "session")
        # StoreUnavailable propagates: Flask answers 500 and nothing is saved.
        try:
            native = native_request.session(name)
        except BaseException:
            native_request.close()
            raise
        return FlaskSession(native, native_request)

    def save_session(self, app, session, response):
        request = session.request
        try:
            if response.status_code >= 500:
                return
            try:
                cookies = request.finish()
            except SessionsError as e:
                app.logger.error("sessions: %s", e)
                cookies = request.set_cookies()
            for cookie in cookies:
                response.headers.add("Set-Cookie", cookie)
        finally:
            request.close()


def csrf_token():
    """A CSRF token of the current session (also the template global)."""
    return flask.session.csrf_token()


def csrf_valid():
    """Whether the current request carries one of the session's tokens, in
    the X-CSRF-Token header or the csrf_token form field."""
    request = flask.request
    token = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    return flask.session.verify_csrf(token)


def _check_csrf():
    if flask.request.method not in SAFE_METHODS and not csrf_valid():
        flask.abort(403, description="CSRF token missing or invalid")


def csrf_protect(view):
    """Answers 403, before `view` runs, to a request with an unsafe method
    and no valid token."""
    @functools.wraps(view)
    def protected(*args, **kwargs):
        _check_csrf()
        return view(*args, **kwargs)
    return protected


def csrf_exempt(view):
    """Exempts `view` from the check of init_app(app, csrf=True) (a webhook
    authenticated otherwise)."""
    view._sessions_csrf_exempt = True
    return view


def _check_csrf_before_request():
    endpoint = flask.request.endpoint
    if endpoint is None:
        return  # no such route: let Flask answer 404 or 405
    view = flask.current_app.view_functions.get(endpoint)
    if getattr(view, "_sessions_csrf_exempt", False):
        return
    _check_csrf()
