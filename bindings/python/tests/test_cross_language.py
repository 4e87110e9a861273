"""Python and the C++ demo server share sessions: same secret, same cookie
name, same store. Python logs a user in and the demo reads the session; the
demo logs a user in and Python reads it. On the cookie store, and on Redis
when redis-server is installed (the test starts one on a free port)."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

import sessions
from conftest import SECRET

DEMO = os.environ.get("SESSIONS_DEMO_SERVER")
pytestmark = pytest.mark.skipif(not DEMO, reason="SESSIONS_DEMO_SERVER is not set")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc):
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start(argv, port, env=None):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_port(port, proc)
    return proc


def call(port, path, cookie=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), []


@pytest.fixture(params=["cookie", "redis"])
def store_uri(request):
    if request.param == "cookie":
        yield "cookie:"
        return
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    port, workdir = free_port(), tempfile.mkdtemp()
    proc = start(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                  "--dir", workdir], port)
    yield f"redis://127.0.0.1:{port}"
    proc.kill()
    proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def demo(store_uri):
    port = free_port()
    env = dict(os.environ, SESSIONS_SECRET=SECRET)
    proc = start([DEMO, "--store", store_uri, "--port", str(port)], port, env)
    yield port, store_uri
    proc.terminate()
    proc.wait()


def test_python_logs_in_and_the_cpp_demo_reads_it(demo):
    port, uri = demo
    with sessions.Store(uri, secrets=[SECRET]) as store:
        with store.begin() as request:
            s = request.session("mysession")
            s["user_id"] = 7
            s["username"] = "from-python"
            (cookie,) = request.finish()
    status, body, _ = call(port, "/profile", cookie.split(";")[0])
    assert status == 200
    assert '"username":"from-python"' in body and '"user_id":7' in body


def test_the_cpp_demo_logs_in_and_python_reads_it(demo):
    port, uri = demo
    status, _, cookies = call(port, "/login?user=from-cpp")
    assert status == 200 and cookies
    with sessions.Store(uri, secrets=[SECRET]) as store:
        with store.begin(cookies[0].split(";")[0]) as request:
            s = request.session("mysession")
            assert s.status == "valid"
            assert s["username"] == "from-cpp" and isinstance(s["user_id"], int)
