"""WSGI middleware: a session per request, saved when the response starts.

    app = SessionMiddleware(app, store, cookie_name="mysession")
    # in the app: session = environ["sessions.session"]

The session is saved, and its Set-Cookie added, when the application calls
start_response (also for an error page the application renders itself). An
application that raises before start_response saves nothing: a half-done
session never overwrites the stored one, and the browser keeps its cookie.
A store that cannot be reached when the session loads gives 503.

CSRF: the session gives tokens (session.csrf_token(), for a form field
named csrf_token or an X-CSRF-Token header) and checks them
(session.verify_csrf(token)). With csrf=True the middleware checks every
request whose method is not GET, HEAD, OPTIONS or TRACE before the
application runs, and answers 403 when neither the X-CSRF-Token header nor
the csrf_token field of a form body (application/x-www-form-urlencoded or
multipart/form-data, up to csrf_form_limit bytes) holds a token of the
session. The form body is read and put back (wsgi.input is replaced by a
copy), so the application reads it whole.
"""
import email.parser
import email.policy
import io
import urllib.parse

from .errors import SessionsError, StoreUnavailable

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
CSRF_HEADER = "HTTP_X_CSRF_TOKEN"  # X-CSRF-Token
CSRF_FIELD = "csrf_token"


class SessionMiddleware:
    def __init__(self, app, store, cookie_name="session", environ_key="sessions.session",
                 csrf=False, csrf_form_limit=1024 * 1024):
        self.app = app
        self.store = store
        self.cookie_name = cookie_name
        self.environ_key = environ_key
        self.csrf = csrf
        self.csrf_form_limit = csrf_form_limit

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
        if self.csrf and environ.get("REQUEST_METHOD", "GET").upper() not in SAFE_METHODS:
            try:
                token = environ.get(CSRF_HEADER) or _form_token(environ, self.csrf_form_limit)
                passed = session.verify_csrf(token)
            except BaseException:
                request.close()
                raise
            if not passed:
                request.close()  # nothing saved: the request did not happen
                body = b"CSRF token missing or invalid\n"
                start_response("403 Forbidden",
                               [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
                return [body]

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


def _form_token(environ, limit):
    """The csrf_token field of a form body, or None; the body is put back in
    environ["wsgi.input"] for the application."""
    content_type = environ.get("CONTENT_TYPE", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0 or length > limit:
        return None  # no body, or too big to read here: the header must carry the token
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if kind == "application/x-www-form-urlencoded":
        try:
            values = urllib.parse.parse_qs(body.decode("latin-1"), keep_blank_values=True,
                                           max_num_fields=10000).get(CSRF_FIELD)
        except ValueError:  # more fields than max_num_fields
            return None
        return values[0] if values else None
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == CSRF_FIELD:
            return part.get_payload(decode=True)
    return None


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
