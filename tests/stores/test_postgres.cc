// The postgresql: store against a real PostgreSQL 15 cluster that the test
// creates (initdb) and starts on a free loopback port.
#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "contract.h"
#include "postgres_store.h"
#include "servers.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// A plain libpq connection, to look at and tamper with the table.
struct RawPg {
  PGconn* conn;
  explicit RawPg(int port)
      : conn(PQconnectdb(("host=127.0.0.1 user=sessions dbname=postgres port=" +
                          std::to_string(port)).c_str())) {
    REQUIRE(PQstatus(conn) == CONNECTION_OK);
  }
  ~RawPg() { PQfinish(conn); }
  std::string text(const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    std::string out = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
      out = std::string("error: ") + PQresultErrorMessage(r);
    PQclear(r);
    return out;
  }
};

}  // namespace

TEST_CASE("postgresql: the store contract") {
  PostgresServer pg;
  SECTION("foreign value") { check_foreign_value(pg.uri()); }
  SECTION("hash_keys") { check_hash_keys(pg.uri()); }
  SECTION("concurrent cycles, pool smaller than the threads") {
    check_concurrent_cycles(pg.uri("pool=3"));
  }
  SECTION("postgres:// and libpq parameters in the query") {
    check_round_trip("postgres://sessions@127.0.0.1:" + std::to_string(pg.port) +
                     "/postgres?sslmode=disable&application_name=libsessions-test&table=web");
  }
}

TEST_CASE("postgresql: the table, its index, and rows that expire") {
  PostgresServer pg;
  RawPg raw(pg.port);
  Fixture f(pg.uri("table=app_sessions"), {{"max_age", "1h"}}, false);
  Browser b;
  const std::string id = log_in(f, b);
  CHECK(raw.text("SELECT count(*) FROM app_sessions WHERE id = '" + id + "'") == "1");
  CHECK(raw.text("SELECT indexname FROM pg_indexes WHERE tablename = 'app_sessions' AND "
                 "indexdef LIKE '%expires_at%'") == "app_sessions_expires_at_idx");
  CHECK(raw.text("SELECT data_type FROM information_schema.columns WHERE table_name = "
                 "'app_sessions' AND column_name = 'data'") == "bytea");
  const double seconds_left = std::stod(
      raw.text("SELECT extract(epoch FROM expires_at - now()) FROM app_sessions"));
  CHECK(seconds_left > 3590);
  CHECK(seconds_left <= 3601);
  // An expired row is never loaded, even before the collector runs. (The
  // status is inferred from the cookie, sealed a moment ago: unknown_id.)
  raw.text("UPDATE app_sessions SET expires_at = now() - interval '1 second'");
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.is_new());
    CHECK(s.get("user_id") == nullptr);
  });
}

TEST_CASE("postgresql: the collector deletes expired rows in bounded batches") {
  PostgresServer pg;
  RawPg raw(pg.port);
  PostgresStore::Options options;
  options.params = {{"host", "127.0.0.1"}, {"port", std::to_string(pg.port)},
                    {"user", "sessions"}, {"dbname", "postgres"}};
  PostgresStore store(options);
  store.start();
  const int64_t now = int64_t(std::time(nullptr));
  const int expired = PostgresStore::kCollectBatch * 2 + 300;
  raw.text("INSERT INTO sessions SELECT 'old' || g, '\\x00'::bytea, now() - interval '1 hour' "
           "FROM generate_series(1, " + std::to_string(expired) + ") g");
  store.save("live", "x", now, 600);
  CHECK(store.collect(now) == size_t(expired));
  CHECK(store.collect(now) == 0);
  CHECK(raw.text("SELECT count(*) FROM sessions") == "1");
}

TEST_CASE("postgresql: unsafe table names are refused, and values are always bound") {
  PostgresServer pg;
  for (const char* table : {"bad-name", "x;DROP%20TABLE%20y", "1abc", "a%22b", "pg%27s"})
    CHECK(open_error(pg.uri(std::string("table=") + table)) == Errc::bad_option);
  CHECK(open_error(pg.uri("sslmode=sometimes")) == Errc::store_unavailable);
  CHECK(open_error("postgresql://127.0.0.1:99999/x") == Errc::bad_uri);
  CHECK(open_error(pg.uri("prefix=x")) == Errc::bad_option);

  PostgresStore::Options options;
  options.params = {{"host", "127.0.0.1"}, {"port", std::to_string(pg.port)},
                    {"user", "sessions"}, {"dbname", "postgres"}};
  PostgresStore store(options);
  store.start();
  const std::string hostile = "x'); DROP TABLE sessions; --";
  store.save(hostile, std::string("d\0ta'\\", 7), 1000, 60);
  std::string data;
  REQUIRE(store.load(hostile, 1000, &data));
  CHECK(data == std::string("d\0ta'\\", 7));
  store.move(hostile, "y' OR '1'='1", "moved", 1000, 60);
  CHECK_FALSE(store.load(hostile, 1000, &data));
  RawPg raw(pg.port);
  CHECK(raw.text("SELECT count(*) FROM sessions") == "1");
}

TEST_CASE("postgresql: a table of that name with another layout is refused at open") {
  PostgresServer pg;
  RawPg raw(pg.port);
  raw.text("CREATE TABLE legacy (name text, value text)");
  CHECK(open_error(pg.uri("table=legacy")) == Errc::store_unavailable);
}

TEST_CASE("postgresql: a restart between two requests is invisible to the second") {
  PostgresServer pg;
  Fixture f(pg.uri("pool=4"), {}, false);
  check_concurrent_cycles(pg.uri("pool=4"));
  Browser b;
  log_in(f, b);
  pg.process.stop();
  pg.restart();
  for (int i = 0; i < 6; ++i)
    b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("user_id") == Value(42)); });
}

TEST_CASE("postgresql: nothing acknowledged is lost to a SIGKILL under load") {
  PostgresServer pg;
  Fixture f(pg.uri("timeout_ms=3000&pool=8"), {}, false);
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> acknowledged;
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; !stop; ++i) {
        Browser b;
        const int64_t value = t * 1'000'000 + i;
        Errc rc = b.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(value)); });
        if (rc == Errc::ok) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.emplace_back(b.jar, value);
        } else {
          ++failed;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  pg.process.kill_hard();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& t : threads) t.join();
  pg.restart();

  INFO("acknowledged saves: " << acknowledged.size() << ", failed: " << failed);
  REQUIRE(acknowledged.size() > 100);
  CHECK(failed > 0);
  size_t lost = 0;
  for (const auto& [jar, value] : acknowledged) {
    Browser b{jar, {}};
    b.request([&](Request& r) {
      const Value* v = r.session(f.store, "sid").get("v");
      if (!v || *v != Value(value)) ++lost;
    });
  }
  CHECK(lost == 0);
}
