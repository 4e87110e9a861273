"""Real Redis Cluster and Sentinel topologies for the Python-driven tests (the
demo's end-to-end test, the Python binding's and the nginx module's): Debian's
redis-server (also as `redis-server sentinel.conf --sentinel`) and redis-cli,
every process on a free 127.0.0.1 port in a temporary directory, killed by
PID at the end. The C++ store tests have the same in
tests/stores/redis_topologies.h, with more knobs.

    with RedisCluster() as cluster: cluster.uri("timeout_ms=5000")
    with RedisSentinelGroup() as group: group.kill_master(); group.wait_for_new_master(old)
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time


def free_port(bus=False):
    """A free loopback port; with bus, one whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    pass


def cli(port, *args, password=None):
    """redis-cli's answer, or "" when the server does not answer."""
    argv = ["redis-cli", "-p", str(port)] + (["--no-auth-warning", "-a", password] if password else [])
    try:
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=5).stdout
    except subprocess.TimeoutExpired:
        return ""


def wait_until(what, ready, timeout=30.0):
    deadline = time.time() + timeout
    while not ready():
        if time.time() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout:g} s")
        time.sleep(0.05)


class _Processes:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sessions-redis-")
        self.procs = {}  # port -> Popen

    def start(self, port, config, sentinel=False):
        node_dir = os.path.join(self.dir, str(port))
        os.makedirs(node_dir, exist_ok=True)
        path = os.path.join(node_dir, "redis.conf")
        with open(path, "w") as f:
            f.write(f"bind 127.0.0.1\nport {port}\ndir {node_dir}\ndaemonize no\n"
                    f"logfile {node_dir}/redis.log\nsave \"\"\nappendonly no\n{config}")
        argv = ["redis-server", path] + (["--sentinel"] if sentinel else [])
        self.procs[port] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(f"redis on {port}", lambda: cli(port, "PING").strip() in ("PONG", "") and
                   self._listening(port))

    @staticmethod
    def _listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill(self, port):
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(timeout=10)

    def close(self):
        for port in list(self.procs):
            self.kill(port)
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster(_Processes):
    """`masters` masters with `replicas` replicas each, made by redis-cli --cluster create."""

    def __init__(self, masters=3, replicas=1, node_timeout_ms=1000):
        super().__init__()
        self.ports = [free_port(bus=True) for _ in range(masters * (1 + replicas))]
        try:
            for port in self.ports:
                self.start(port, f"cluster-enabled yes\ncluster-config-file nodes.conf\n"
                                 f"cluster-node-timeout {node_timeout_ms}\n"
                                 "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n")
            subprocess.run(["redis-cli", "--cluster", "create"] +
                           [f"127.0.0.1:{p}" for p in self.ports] +
                           ["--cluster-replicas", str(replicas), "--cluster-yes"],
                           check=True, capture_output=True, timeout=60)
            self.seeds = self.ports[:masters]
            self.wait_until_ok()
        except BaseException:
            self.close()
            raise

    def uri(self, query=""):
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.seeds)
        return f"redis+cluster://{hosts}" + (f"?{query}" if query else "")

    def nodes(self):
        """(port, flags, slot ranges) of every node, as a live node sees them."""
        for port in self.procs:
            out = cli(port, "CLUSTER", "NODES")
            if out.strip():
                return [(int(f[1].split("@")[0].rsplit(":", 1)[1]), f[2].split(","), f[8:])
                        for f in (line.split() for line in out.splitlines() if line.strip())]
        return []

    def masters(self):
        """The live masters that serve slots."""
        return sorted(port for port, flags, slots in self.nodes()
                      if "master" in flags and "fail" not in flags and slots)

    def wait_until_ok(self, timeout=30.0):
        """Until every live node says cluster_state:ok and every slot's master is alive."""
        start = time.time()

        def ok():
            masters = self.masters()
            return (len(masters) == len(self.seeds) and all(p in self.procs for p in masters) and
                    all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in self.procs))
        wait_until("cluster_state:ok", ok, timeout)
        return time.time() - start

    def kill_master(self, port):
        self.kill(port)


class RedisSentinelGroup(_Processes):
    """A master, `replicas` replicas and `sentinels` sentinels (quorum 2) naming it `name`."""

    def __init__(self, name="mymaster", replicas=2, sentinels=3, down_after_ms=1000):
        super().__init__()
        self.name = name
        try:
            self.data = [free_port() for _ in range(1 + replicas)]
            self.start(self.data[0], "")
            for port in self.data[1:]:
                self.start(port, f"replicaof 127.0.0.1 {self.data[0]}\n")
            wait_until("replicas in sync", lambda: all(
                "master_link_status:up" in cli(p, "INFO", "replication") for p in self.data[1:]))
            self.sentinels = [free_port() for _ in range(sentinels)]
            for port in self.sentinels:
                self.start(port, "protected-mode no\nsentinel resolve-hostnames no\n"
                                 f"sentinel monitor {name} 127.0.0.1 {self.data[0]} 2\n"
                                 f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
                                 f"sentinel failover-timeout {name} 2000\n", sentinel=True)
            wait_until("sentinels know each other and the replicas", lambda: all(
                self._sentinel_field(p, "num-other-sentinels") == str(sentinels - 1) and
                self._sentinel_field(p, "num-slaves") == str(replicas) for p in self.sentinels))
        except BaseException:
            self.close()
            raise

    def _sentinel_field(self, port, field):
        lines = cli(port, "SENTINEL", "MASTER", self.name).splitlines()
        for i in range(0, len(lines) - 1, 2):
            if lines[i] == field:
                return lines[i + 1]
        return ""

    def uri(self, query=""):
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.name}" + (f"?{query}" if query else "")

    def master_port(self):
        for port in self.sentinels:
            out = cli(port, "SENTINEL", "get-master-addr-by-name", self.name).split()
            if len(out) == 2:
                return int(out[1])
        raise RuntimeError("no sentinel names a master")

    def kill_master(self):
        old = self.master_port()
        self.kill(old)
        return old

    def wait_for_new_master(self, old, timeout=30.0):
        start = time.time()

        def switched():
            answers = [cli(p, "SENTINEL", "get-master-addr-by-name", self.name).split()
                       for p in self.sentinels]
            ports = {int(a[1]) for a in answers if len(a) == 2}
            if len(ports) != 1:
                return False
            port = ports.pop()
            return port != old and port in self.procs and cli(port, "ROLE").startswith("master")
        wait_until("a new master", switched, timeout)
        return time.time() - start

