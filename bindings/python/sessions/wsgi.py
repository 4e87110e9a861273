"""WSGI middleware: a session per request, saved when the response starts.

    app = SessionMiddleware(app, store, cookie_name="mysession")
    # in the app: session = environ["sessions.session"]

The session is saved, and its Set-Cookie added, when the application calls
start_response (also for an error page the application renders itself). An
application that raises before start_response saves nothing: a half-done
session never overwrites the stored one, and the browser keeps its cookie.
A store that cannot be reached when the session loads gives 503.
"""
from .errors import SessionsError, StoreUnavailable


class SessionMiddleware:
    def __init__(self, app, store, cookie_name="session", environ_key="sessions.session"):
        self.app = app
        self.store = store
        self.cookie_name = cookie_name
        self.environ_key = environ_key

    def __call__(self, environ, start_response):
        request = self.store.begin(environ.get("HTTP_COOKIE"))
        try:
            session = request.session(self.cookie_name)
        except StoreUnavailable as e:
            request.close()
            environ["wsgi.errors"].write(f"sessions: {e}\n")
            body = b"session store unavailable\n"
            start_response("503 Service Unavailable",
                           [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        environ[self.environ_key] = session
        environ["sessions.request"] = request

        def start_with_cookies(status, headers, exc_info=None):
            if request.closed or getattr(request, "_finished", False):
                return start_response(status, headers, exc_info)
            request._finished = True
            try:
                cookies = request.finish()
            except SessionsError as e:
                # The other sessions were saved; this one was not, and sends no cookie.
                environ["wsgi.errors"].write(f"sessions: {e}\n")
                cookies = request.set_cookies()
            return start_response(status, list(headers) + [("Set-Cookie", c) for c in cookies],
                                  exc_info)

        try:
            result = self.app(environ, start_with_cookies)
        except BaseException:
            request.close()  # nothing saved
            raise
        return _ClosingIterable(result, request)


class _ClosingIterable:
    """The application's response, then the request's native memory freed."""

    def __init__(self, result, request):
        self.result = result
        self.request = request

    def __iter__(self):
        return iter(self.result)

    def close(self):
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            self.request.close()
