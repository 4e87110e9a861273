"""The nginx module on redis+cluster: and redis+sentinel: stores (real
topologies, tests/support/redis_topologies.py): nginx gates on sessions the
demo server wrote, and keeps doing so when a master is SIGKILLed."""
import os
import sys

import pytest

from conftest import Demo, get
from test_nginx import log_in, protected_site

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "support"))
from redis_topologies import RedisCluster, RedisSentinelGroup  # noqa: E402


@pytest.fixture(params=["cluster", "sentinel"])
def topology(request):
    made = RedisCluster(replicas=2) if request.param == "cluster" else RedisSentinelGroup()
    yield made
    made.close()


def test_nginx_gates_on_sessions_through_a_failover(nginx, upstream, topology):
    uri = topology.uri("timeout_ms=8000&min_replicas=1&replica_timeout_ms=1000")
    demo = Demo(uri)
    try:
        nginx.start(protected_site(nginx, uri, demo.port, upstream.port))
        users = {name: log_in(nginx.port, name) for name in ("ann", "bob", "cid", "dan", "eve")}
        for name, cookie in users.items():
            r = get(nginx.port, "/admin", cookie=cookie)
            assert r.status == 200 and r.json()["headers"]["x-user-name"] == name
        assert get(nginx.port, "/admin").status == 401
        if isinstance(topology, RedisCluster):
            topology.kill_master(topology.masters()[0])
        else:
            topology.kill_master()
        # The worker's thread pool waits the failover out (timeout_ms).
        for name, cookie in users.items():
            r = get(nginx.port, "/admin", cookie=cookie)
            assert r.status == 200, r.body
            assert r.json()["headers"]["x-user-name"] == name
    finally:
        demo.close()
