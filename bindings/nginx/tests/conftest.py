"""Real processes for the nginx module's tests: Debian's nginx with the
module loaded, redis-server, the demo server and an upstream that echoes
what nginx sent it. All on free 127.0.0.1 ports, stopped afterwards.

Environment (set by the ctest entry): NGINX_SESSIONS_MODULE (the .so),
LIBSESSIONS_PATH (for the Python binding), SESSIONS_DEMO_SERVER."""
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

SECRET = "nginx-test-secret-nginx-test-secret-0001"
OLD_SECRET = "nginx-test-old-secret-nginx-test-old-0002"
MODULE = os.environ.get("NGINX_SESSIONS_MODULE", "")
DEMO = os.environ.get("SESSIONS_DEMO_SERVER", "")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def get(port, path, cookie=None, headers=None, timeout=10, method="GET", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if cookie:
        h["Cookie"] = cookie
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    resp = Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
    conn.close()
    return resp


def cookie_pair(set_cookie):
    """The name=value a browser sends back for one Set-Cookie value."""
    return set_cookie.split(";", 1)[0]


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None
        self.start()

    def start(self):
        # appendonly: sessions survive the restarts the tests make.
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def uri(self, query="timeout_ms=1000"):
        return f"redis://127.0.0.1:{self.port}/0?{query}"


class Upstream:
    """Answers every request with JSON of what it received (method, path,
    headers, body); ?set_cookie=V makes it send Set-Cookie: V (an
    application writing its session)."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit
                query = parse_qs(urlsplit(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                received = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                body = json.dumps({"method": self.command, "path": self.path,
                                   "headers": {k.lower(): v for k, v in self.headers.items()},
                                   "body": received})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                for value in query.get("set_cookie", []):
                    self.send_header("Set-Cookie", value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body.encode())

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_PROPFIND = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Demo:
    def __init__(self, store_uri):
        self.port = free_port()
        env = dict(os.environ, SESSIONS_SECRET=SECRET)
        self.proc = subprocess.Popen([DEMO, "--store", store_uri, "--port", str(self.port)],
                                     env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def close(self):
        stop(self.proc)


class Nginx:
    """nginx from Debian with the module, on a generated configuration."""

    def __init__(self, workdir):
        self.dir = workdir
        self.port = free_port()
        self.proc = None
        self.error_log = os.path.join(workdir, "error.log")
        self.secret_file = os.path.join(workdir, "secrets")
        write_secret_file(self.secret_file, [SECRET, OLD_SECRET])

    def config(self, http_body, main=""):
        d = self.dir
        return f"""
load_module {MODULE};
pid {d}/nginx.pid;
error_log {self.error_log} info;
worker_processes 1;
{main}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    {http_body}
}}
"""

    def write(self, http_body, main="", name="nginx.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(self.config(http_body, main))
        return path

    def check(self, http_body, main=""):
        """nginx -t on this configuration: (exit code, output)."""
        path = self.write(http_body, main, name="check.conf")
        r = subprocess.run([NGINX, "-t", "-p", self.dir, "-c", path], capture_output=True,
                           text=True)
        return r.returncode, r.stdout + r.stderr

    def start(self, http_body, main=""):
        path = self.write(http_body, main)
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", path, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(self.port, self.proc)
        except RuntimeError:
            raise RuntimeError(self.proc.stderr.read().decode() + self.log())
        return self

    def log(self):
        try:
            with open(self.error_log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_secret_file(path, secrets, mode=0o600):
    with open(path, "w") as f:
        f.write("# newest first: it seals; every line opens\n")
        f.write("\n".join(secrets) + "\n")
    os.chmod(path, mode)


@pytest.fixture
def workdir(tmp_path):
    os.chmod(tmp_path, 0o755)  # workers run as nobody
    return str(tmp_path)


@pytest.fixture
def nginx(workdir):
    if not MODULE or not os.path.exists(MODULE):
        pytest.fail("NGINX_SESSIONS_MODULE must name the built module")
    n = Nginx(workdir)
    yield n
    n.stop()


@pytest.fixture
def redis(workdir):
    r = Redis(workdir)
    yield r
    if r.proc.poll() is None:
        r.kill()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


def binding_store(uri, secrets=(SECRET,), **cookie):
    """A Python-binding store: another application writing sessions."""
    import sessions
    return sessions.Store(uri, secrets=list(secrets),
                          cookie=sessions.CookieOptions(**cookie) if cookie else None)


def mint(store, values, name="mysession"):
    """Saves a session with `values`; returns the Cookie pair for it."""
    with store.begin("") as req:
        s = req.session(name)
        for k, v in values.items():
            s[k] = v
        lines = req.finish()
    assert len(lines) == 1, lines
    return cookie_pair(lines[0])


def csrf_token(session):
    """session.csrf_token() of the Python binding, or sess_csrf_token
    through ctypes where the binding does not have it yet."""
    if hasattr(session, "csrf_token"):
        return session.csrf_token()
    import ctypes
    from sessions._native import library_path
    fn = ctypes.CDLL(library_path).sess_csrf_token  # its own prototype
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                   ctypes.POINTER(ctypes.c_size_t)]
    token, length = ctypes.c_char_p(), ctypes.c_size_t()
    handle = ctypes.cast(session._h(), ctypes.c_void_p)
    assert fn(handle, ctypes.byref(token), ctypes.byref(length)) == 0
    return token.value[:length.value].decode("ascii")


def mint_token(store, cookie, name="mysession"):
    """What an application's form page does: a CSRF token of the session
    under `cookie` (the first creates its secret, and the session is saved).
    Returns (the cookie the browser has afterwards, the token)."""
    with store.begin(cookie) as req:
        s = req.session(name)
        assert s.status == "valid", s.status
        token = csrf_token(s)
        lines = req.finish()
    for line in lines:
        if line.startswith(name + "="):
            cookie = cookie_pair(line)
    return cookie, token
