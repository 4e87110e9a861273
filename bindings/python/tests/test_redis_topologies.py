"""The binding on redis+cluster: and redis+sentinel: stores against real
topologies (tests/support/redis_topologies.py): sessions, principals and a
master SIGKILLed under a loop of requests, from Python as from C."""
import os
import sys
import threading

import pytest

import sessions
from conftest import SECRET

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "support"))
from redis_topologies import RedisCluster, RedisSentinelGroup  # noqa: E402

QUERY = "timeout_ms=8000&min_replicas=1&replica_timeout_ms=1000"


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def topology(request):
    made = RedisCluster(replicas=2) if request.param == "cluster" else RedisSentinelGroup()
    yield made
    made.close()


def header_of(cookies):
    return "; ".join(c.split(";")[0] for c in cookies)


def test_sessions_and_principals(topology):
    with sessions.Store(topology.uri(QUERY), secrets=[SECRET]) as store:
        headers = []
        for device in range(4):
            with store.begin() as request:
                s = request.session("sid")
                s.regenerate_id()
                s.principal = "ann"
                s["cart"] = [device, "book"]
                headers.append(header_of(request.finish()))
        for device, header in enumerate(headers):
            with store.begin(header) as request:
                assert request.session("sid")["cart"] == [device, "book"]
        assert len(store.list_sessions("ann")) == 4
        assert store.end_sessions("ann") == 4
        for header in headers:
            with store.begin(header) as request:
                assert request.session("sid").status != "valid"


def test_a_master_killed_under_requests(topology):
    with sessions.Store(topology.uri(QUERY), secrets=[SECRET]) as store:
        failed, acknowledged, stop = [], {}, threading.Event()

        def loop(thread):
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    with store.begin() as request:
                        request.session("sid")["n"] = n
                        acknowledged[(thread, n)] = header_of(request.finish())
                except sessions.SessionsError as e:
                    failed.append(e)

        threads = [threading.Thread(target=loop, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        try:
            if isinstance(topology, RedisCluster):
                old = topology.masters()[0]
                topology.kill_master(old)
                topology.wait_until_ok()
            else:
                old = topology.kill_master()
                topology.wait_for_new_master(old)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not failed, failed[:3]
        assert len(acknowledged) > 50
        for (thread, n), header in list(acknowledged.items())[::7]:
            with store.begin(header) as request:
                assert request.session("sid")["n"] == n
