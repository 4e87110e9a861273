// The request cycle on a server-side store, and the raw libmemcached floor.
// bench/stores.py runs both next to redis-benchmark and prints the table of
// docs/benchmarks.md; this program measures one figure per call:
//
//   bench_stores cycle URI THREADS SECONDS TRIALS
//       cycles per second: load by cookie, read 3 values, set 1, save
//   bench_stores cycle-ns URI ITERATIONS
//       nanoseconds per cycle on one thread (the C side of the Python
//       binding's overhead, bench/python_overhead.py)
//   bench_stores record-bytes
//       the size of the benchmark's encoded session record
//   bench_stores memcached-floor PORT THREADS SECONDS TRIALS VALUE_BYTES
//       operations per second of a bare libmemcached get+set loop, one client
//       per thread, same key and value sizes and client settings as the store
//   bench_stores sqlite-floor PATH THREADS SECONDS TRIALS VALUE_BYTES
//       loops per second of a bare sqlite3 SELECT + upsert, one connection per
//       thread, with the store's schema and settings (WAL, synchronous=FULL)
#include <libmemcached/memcached.h>
#include <sqlite3.h>

#include <ctime>

#include "workload.h"

namespace {

using namespace bench;

double memcached_floor(int port, int threads, double seconds, int trials, size_t value_bytes) {
  const std::string value(value_bytes, 'v');
  std::vector<double> samples;
  for (int trial = 0; trial < trials; ++trial) {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> total{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        memcached_st* mc = memcached_create(nullptr);
        memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
        memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
        memcached_server_add(mc, "127.0.0.1", in_port_t(port));
        // A session key: the prefix and a 43-character ID.
        std::string key = "session:" + std::string(41, 'k') + std::to_string(10 + t % 90);
        int64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          size_t length = 0;
          uint32_t flags = 0;
          memcached_return_t rc;
          char* got = memcached_get(mc, key.data(), key.size(), &length, &flags, &rc);
          std::free(got);
          rc = memcached_set(mc, key.data(), key.size(), value.data(), value.size(), 3600, 0);
          if (rc != MEMCACHED_SUCCESS) {
            std::fprintf(stderr, "memcached floor: %s\n", memcached_strerror(mc, rc));
            std::exit(1);
          }
          n += 2;
        }
        memcached_free(mc);
        total += n;
      });
    }
    auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    std::chrono::duration<double> elapsed = Clock::now() - start;
    samples.push_back(double(total) / elapsed.count());
  }
  return median(samples);
}

double sqlite_floor(const std::string& path, int threads, double seconds, int trials,
                    size_t value_bytes) {
  const std::string value(value_bytes, 'v');
  auto open = [&] {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path.c_str(), &db,
                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE IF NOT EXISTS floor (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT "
                 "NULL, expires_at INTEGER NOT NULL);"
                 "CREATE INDEX IF NOT EXISTS floor_expires_at ON floor (expires_at)",
                 nullptr, nullptr, nullptr);
    return db;
  };
  sqlite3_close(open());  // the schema, before the threads race for it
  std::vector<double> samples;
  for (int trial = 0; trial < trials; ++trial) {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> total{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        sqlite3* db = open();
        sqlite3_stmt *select = nullptr, *upsert = nullptr;
        sqlite3_prepare_v2(db, "SELECT data FROM floor WHERE id = ?1 AND expires_at > ?2", -1,
                           &select, nullptr);
        sqlite3_prepare_v2(db,
                           "INSERT INTO floor (id, data, expires_at) VALUES (?1, ?2, ?3) ON "
                           "CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = "
                           "excluded.expires_at",
                           -1, &upsert, nullptr);
        const std::string key = std::string(41, 'k') + std::to_string(10 + t % 90);
        int64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          const int64_t now = int64_t(std::time(nullptr));
          sqlite3_bind_text(select, 1, key.data(), int(key.size()), SQLITE_STATIC);
          sqlite3_bind_int64(select, 2, now);
          if (sqlite3_step(select) == SQLITE_ROW) sqlite3_column_bytes(select, 0);
          sqlite3_reset(select);
          sqlite3_bind_text(upsert, 1, key.data(), int(key.size()), SQLITE_STATIC);
          sqlite3_bind_blob(upsert, 2, value.data(), int(value.size()), SQLITE_STATIC);
          sqlite3_bind_int64(upsert, 3, now + 3600);
          if (sqlite3_step(upsert) != SQLITE_DONE) {
            std::fprintf(stderr, "sqlite floor: %s\n", sqlite3_errmsg(db));
            std::exit(1);
          }
          sqlite3_reset(upsert);
          ++n;
        }
        sqlite3_finalize(select);
        sqlite3_finalize(upsert);
        sqlite3_close(db);
        total += n;
      });
    }
    auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    std::chrono::duration<double> elapsed = Clock::now() - start;
    samples.push_back(double(total) / elapsed.count());
  }
  return median(samples);
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_stores cycle URI THREADS SECONDS TRIALS\n"
               "       bench_stores cycle-ns URI ITERATIONS\n"
               "       bench_stores record-bytes\n"
               "       bench_stores memcached-floor PORT THREADS SECONDS TRIALS VALUE_BYTES\n"
               "       bench_stores sqlite-floor PATH THREADS SECONDS TRIALS VALUE_BYTES\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  if (mode == "record-bytes") {
    sess_store* store = open_store("cookie:");
    size_t record_bytes = 0;
    make_session(store, &record_bytes);
    sess_store_close(store);
    std::printf("%zu\n", record_bytes);
    return 0;
  }
  if (mode == "cycle" && argc == 6) {
    sess_store* store = open_store(argv[2]);
    std::printf("%.0f\n", cycle_throughput(store, std::atoi(argv[3]), std::atof(argv[4]),
                                           std::atoi(argv[5])));
    sess_store_close(store);
    return 0;
  }
  if (mode == "cycle-ns" && argc == 4) {
    sess_store* store = open_store(argv[2]);
    size_t record_bytes = 0;
    const std::string header = make_session(store, &record_bytes);
    const long n = std::atol(argv[3]);
    for (long i = 0; i < n / 10; ++i) cycle(store, header, i);  // warm-up
    auto start = Clock::now();
    for (long i = 0; i < n; ++i) cycle(store, header, i);
    std::chrono::duration<double, std::nano> elapsed = Clock::now() - start;
    std::printf("%.0f\n", elapsed.count() / double(n));
    sess_store_close(store);
    return 0;
  }
  if (mode == "memcached-floor" && argc == 7) {
    std::printf("%.0f\n", memcached_floor(std::atoi(argv[2]), std::atoi(argv[3]),
                                          std::atof(argv[4]), std::atoi(argv[5]),
                                          size_t(std::atol(argv[6]))));
    return 0;
  }
  if (mode == "sqlite-floor" && argc == 7) {
    std::printf("%.0f\n", sqlite_floor(argv[2], std::atoi(argv[3]), std::atof(argv[4]),
                                       std::atoi(argv[5]), size_t(std::atol(argv[6]))));
    return 0;
  }
  return usage();
}
