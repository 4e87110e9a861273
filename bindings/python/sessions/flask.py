"""A Flask SessionInterface on libsessions. Two lines switch an app:

    from sessions.flask import SessionInterface
    app.session_interface = SessionInterface(sessions.Store(uri, secrets=[...]))

`flask.session` is then the libsessions session (a dict of JSON-like values
plus bytes). A response with a 5xx status saves nothing, so a half-done
session never overwrites the stored one.
"""

from flask.sessions import SessionInterface as _FlaskInterface
from flask.sessions import SessionMixin

from .errors import SessionsError


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


class SessionInterface(_FlaskInterface):
    def __init__(self, store, cookie_name=None):
        self.store = store
        self.cookie_name = cookie_name

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
