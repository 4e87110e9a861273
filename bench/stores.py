#!/usr/bin/env python3
"""Server-side store benchmarks (docs/benchmarks.md).

Starts redis-server, memcached and a PostgreSQL cluster on free loopback
ports (and an SQLite file) and, at each thread count, measures in the same
run, trials interleaved:
  - the store's request cycle (load by cookie, read 3 values, set 1, save)
    with a pool as large as the thread count;
  - Redis' floor: redis-benchmark -t get,set with the same value size and as
    many connections;
  - redis-cluster: a 3-master Redis Cluster (redis-cli --cluster create), the
    store on redis+cluster: next to redis-benchmark --cluster -t get,set;
  - redis-wait: a master with one replica, the store with min_replicas=1
    next to the same store without it (the price of WAIT on every save);
  - Memcached's floor: a bare libmemcached get+set loop, one client per thread;
  - PostgreSQL's floor: pgbench -M prepared running SELECT + upsert of the
    same size on the same schema, as many clients;
  - SQLite's floor: a bare sqlite3 SELECT + upsert loop, one connection per
    thread, same schema and settings.
A cycle is one read and one write. For Redis the floor in cycles per second
is 1 / (1/get_rate + 1/set_rate), for Memcached half its operation rate;
targets: 80% of it. For PostgreSQL and SQLite a floor transaction is a whole
cycle; targets: 70%.

With --concurrency it measures instead, at each thread count, the cycle under
concurrency=merge (the default) next to concurrency=last_write, trials
interleaved: the price of never losing a parallel request's update (each
thread its own session, as real traffic mostly is). Target: merge keeps 85%.

    bench/stores.py BUILD_DIR [--seconds S] [--trials N] [--threads 1,8,64]
                    [--stores redis,redis-cluster,redis-wait,memcached,postgresql,sqlite]
                    [--concurrency]
"""
import argparse
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from redis_topologies import RedisCluster  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start(argv, port):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def run(argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def redis_floor(port, threads, value_bytes, seconds, cluster=False):
    """GET and SET rates of one redis-benchmark run of about `seconds` per test
    (--cluster: against the cluster that the node at `port` belongs to)."""
    requests = int(max(20000, min(400000, (30000 if threads == 1 else 80000) * seconds)))
    out = run(["redis-benchmark"] + (["--cluster"] if cluster else []) +
              ["-h", "127.0.0.1", "-p", str(port), "-t", "get,set",
               "-d", str(value_bytes), "-c", str(threads), "-n", str(requests),
               "-r", "100000", "--csv"])
    rates = {row[0]: float(row[1]) for row in csv.reader(io.StringIO(out))
             if len(row) > 1 and row[0] in ("GET", "SET")}
    return rates["GET"], rates["SET"]


def start_redis(workdir, port, *extra):
    return start(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                  "--appendonly", "no", "--dir", workdir] + list(extra), port)


PG_BIN = "/usr/lib/postgresql/15/bin/"


def as_postgres(argv):
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + argv


def start_postgres(workdir, port):
    pgdir = os.path.join(workdir, "pg")
    os.mkdir(pgdir)
    if os.geteuid() == 0:
        shutil.chown(pgdir, "postgres", "postgres")
    data = os.path.join(pgdir, "data")
    run(as_postgres([PG_BIN + "initdb", "-D", data, "-U", "sessions", "--auth=trust",
                     "--no-sync", "-E", "UTF8"]))
    proc = start(as_postgres([PG_BIN + "postgres", "-D", data, "-p", str(port), "-k", pgdir,
                              "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"]),
                 port)
    for _ in range(300):  # accepting connections is not accepting queries yet
        if subprocess.run([PG_BIN + "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0:
            break
        time.sleep(0.05)
    run([PG_BIN + "psql", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "sessions", "postgres",
         "-c", "CREATE TABLE floor (id text PRIMARY KEY, data bytea NOT NULL, "
               "expires_at timestamptz NOT NULL); CREATE INDEX ON floor (expires_at)"])
    return proc


def pgbench_floor(port, threads, value_bytes, seconds, workdir):
    """Transactions per second of pgbench: each a SELECT and an upsert of one
    client's own row, like one request cycle."""
    script = os.path.join(workdir, "cycle.sql")
    with open(script, "w") as f:
        f.write("SELECT data FROM floor WHERE id = 'k' || :client_id::text AND expires_at > now();\n"
                "INSERT INTO floor (id, data, expires_at) VALUES ('k' || :client_id::text, "
                f"decode('{'76' * value_bytes}', 'hex'), now() + interval '1 hour') "
                "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, "
                "expires_at = EXCLUDED.expires_at;\n")
    out = run([PG_BIN + "pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-U", "sessions",
               "-M", "prepared", "-c", str(threads), "-j", str(min(threads, 2)),
               "-T", str(max(1, round(seconds))), "-f", script, "postgres"])
    for line in out.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(f"pgbench printed no tps: {out}")


def concurrency_table(bench, stores, uris, thread_counts, args):
    print(f"libsessions concurrency=merge vs last_write, {os.cpu_count()} cores, "
          f"{args.trials} interleaved trials of {args.seconds:g} s, medians\n")
    print("| store | threads | last_write cycles/s | merge cycles/s | merge / last_write | target |")
    print("|---|---|---|---|---|---|")
    for threads in thread_counts:
        one = [str(threads), str(args.seconds), "1"]
        for name in stores:
            pairs = []
            for trial in range(args.trials):
                rates = {}
                for mode in ("last_write", "merge"):
                    uri = uris[name](threads, f"{trial}_{mode}") + f"&concurrency={mode}"
                    rates[mode] = float(run([bench, "cycle", uri] + one))
                pairs.append((rates["last_write"], rates["merge"]))
            last = median([p[0] for p in pairs])
            merge = median([p[1] for p in pairs])
            ratio = median([m / l for l, m in pairs])
            print(f"| {name} | {threads} | {last:,.0f} | {merge:,.0f} | {ratio:.0%} "
                  f"| 85%: {'met' if ratio >= 0.85 else 'MISSED'} |", flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", default="1,8,64")
    parser.add_argument("--stores",
                        default="redis,redis-cluster,redis-wait,memcached,postgresql,sqlite")
    parser.add_argument("--concurrency", action="store_true",
                        help="merge vs last_write instead of the cycle vs the floor")
    args = parser.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_stores")
    thread_counts = [int(t) for t in args.threads.split(",")]

    stores = args.stores.split(",")
    workdir = tempfile.mkdtemp(prefix="sessions-bench-")
    os.chmod(workdir, 0o755)
    redis_port, memcached_port, pg_port = free_port(), free_port(), free_port()
    servers = []
    if "redis" in stores:
        servers.append(start(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                              "--save", "", "--appendonly", "no", "--dir", workdir], redis_port))
    cluster = RedisCluster(replicas=0) if "redis-cluster" in stores else None
    wait_master, wait_replica = free_port(), free_port()
    if "redis-wait" in stores:
        servers.append(start_redis(workdir, wait_master, "--dbfilename", "master.rdb"))
        servers.append(start_redis(workdir, wait_replica, "--dbfilename", "replica.rdb",
                                   "--replicaof", "127.0.0.1", str(wait_master)))
        deadline = time.time() + 30
        while "master_link_status:up" not in run(["redis-cli", "-p", str(wait_replica), "info",
                                                  "replication"]):
            if time.time() > deadline:
                raise RuntimeError("the benchmark's replica did not sync")
            time.sleep(0.1)
    if "memcached" in stores:
        servers.append(start(["memcached", "-l", "127.0.0.1", "-p", str(memcached_port), "-U", "0",
                              "-m", "256", "-t", "2"] + (["-u", "root"] if os.geteuid() == 0 else []),
                             memcached_port))
    if "postgresql" in stores:
        servers.append(start_postgres(workdir, pg_port))
    try:
        uris = {
            "redis": lambda threads, trial: f"redis://127.0.0.1:{redis_port}?pool={threads}",
            "redis-cluster": lambda threads, trial: cluster.uri(f"pool={threads}"),
            "memcached": lambda threads, trial:
                f"memcached://127.0.0.1:{memcached_port}?pool={threads}",
            "postgresql": lambda threads, trial: f"postgresql://sessions@127.0.0.1:{pg_port}/postgres"
                                                 f"?pool={threads}&table=t{threads}_{trial}",
            "sqlite": lambda threads, trial:
                f"sqlite://{os.path.join(workdir, f's{threads}_{trial}.db')}?pool={threads}",
        }
        if args.concurrency:
            return concurrency_table(bench, stores, uris, thread_counts, args)
        value_bytes = int(run([bench, "record-bytes"]))
        print(f"libsessions server-side stores, {os.cpu_count()} cores, session record "
              f"{value_bytes} bytes, {args.trials} interleaved trials of {args.seconds:g} s, "
              "medians\n")
        print("| store | threads | cycles/s | floor measured | floor cycles/s "
              "| cycle / floor | target |")
        print("|---|---|---|---|---|---|---|")
        for threads in thread_counts:
            # Trials interleave floor and cycle, so that both see the same
            # machine; the ratio is the median of the per-trial ratios.
            one = [str(threads), str(args.seconds), "1"]
            samples = {name: [] for name in stores}
            for trial in range(args.trials):
                if "redis" in stores:
                    get_rate, set_rate = redis_floor(redis_port, threads, value_bytes, args.seconds)
                    cycles = float(run([bench, "cycle",
                                        f"redis://127.0.0.1:{redis_port}?pool={threads}"] + one))
                    samples["redis"].append((cycles, 1 / (1 / get_rate + 1 / set_rate),
                                             f"{get_rate:,.0f} / {set_rate:,.0f} ops"))
                if "redis-cluster" in stores:
                    get_rate, set_rate = redis_floor(cluster.seeds[0], threads, value_bytes,
                                                     args.seconds, cluster=True)
                    cycles = float(run([bench, "cycle", cluster.uri(f"pool={threads}")] + one))
                    samples["redis-cluster"].append((cycles, 1 / (1 / get_rate + 1 / set_rate),
                                                     f"{get_rate:,.0f} / {set_rate:,.0f} ops"))
                if "redis-wait" in stores:
                    uri = f"redis://127.0.0.1:{wait_master}?pool={threads}"
                    plain = float(run([bench, "cycle", uri] + one))
                    waiting = float(run([bench, "cycle", uri + "&min_replicas=1"] + one))
                    samples["redis-wait"].append((waiting, plain, f"{plain:,.0f} cycles without"))
                if "memcached" in stores:
                    ops = float(run([bench, "memcached-floor", str(memcached_port)] + one +
                                    [str(value_bytes)]))
                    cycles = float(run([bench, "cycle",
                                        f"memcached://127.0.0.1:{memcached_port}?pool={threads}"]
                                       + one))
                    samples["memcached"].append((cycles, ops / 2, f"{ops:,.0f} get+set ops"))
                if "postgresql" in stores:
                    tps = pgbench_floor(pg_port, threads, value_bytes, args.seconds, workdir)
                    cycles = float(run([bench, "cycle",
                                        f"postgresql://sessions@127.0.0.1:{pg_port}/postgres"
                                        f"?pool={threads}&table=t{threads}_{trial}"] + one))
                    samples["postgresql"].append((cycles, tps, f"{tps:,.0f} pgbench tps"))
                if "sqlite" in stores:
                    db = os.path.join(workdir, f"s{threads}_{trial}.db")
                    loops = float(run([bench, "sqlite-floor", db + "-floor"] + one +
                                      [str(value_bytes)]))
                    cycles = float(run([bench, "cycle", f"sqlite://{db}?pool={threads}"] + one))
                    samples["sqlite"].append((cycles, loops, f"{loops:,.0f} loops"))
            for name, trials in samples.items():
                ratio = median([c / f for c, f, _ in trials])
                cycles = median([c for c, _, _ in trials])
                floor_cycles = median([f for _, f, _ in trials])
                floor_text = sorted(trials, key=lambda t: t[1])[len(trials) // 2][2]
                target = 0.8 if name in ("redis", "redis-cluster", "memcached") else 0.7
                verdict = f"{target:.0%}: {'met' if ratio >= target else 'MISSED'}"
                if name == "redis-wait":
                    verdict = "none: the price of min_replicas=1"
                print(f"| {name} | {threads} | {cycles:,.0f} | {floor_text} | {floor_cycles:,.0f} "
                      f"| {ratio:.0%} | {verdict} |", flush=True)
        return 0
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        if cluster:
            cluster.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
