// The postgresql: store against a real PostgreSQL 15 cluster that the test
// creates (initdb) and starts on a free loopback port.
#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "postgres_store.h"
#include "record.h"
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
  // Every row's first column, one a line.
  std::string lines(const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    std::string out;
    for (int i = 0; i < PQntuples(r); ++i) out += std::string(PQgetvalue(r, i, 0)) + "\n";
    PQclear(r);
    return out;
  }
};

// The store on pg's database, opened directly (not through a Store).
PostgresStore::Options store_options(const PostgresServer& pg) {
  PostgresStore::Options options;
  options.params = {{"host", "127.0.0.1"}, {"port", std::to_string(pg.port)},
                    {"user", "sessions"}, {"dbname", "postgres"}};
  return options;
}

// A stored record of `principal` (none when empty), told apart by `n`: the
// identity header, then a record (the store never decodes it).
std::string principal_record(const std::string& principal, int64_t n) {
  Identity id;
  id.principal = principal;
  id.auth_us = 1;
  std::string data;
  encode_identity(id, &data);
  SessionRecord record;
  record.created = record.last_seen = 1'700'000'000;
  record.values.set("n", Value(n));
  std::string body;
  encode_record(record, &body);
  return data + body;
}

// principal_records, sorted by key.
Backend::KeyedRecords listed(Backend& store, const std::string& principal, int64_t now) {
  Backend::KeyedRecords out;
  store.principal_records(principal, now, &out);
  std::sort(out.begin(), out.end());
  return out;
}

constexpr int kCountThreads = 4, kCountIncrements = 50;

// kCountThreads threads, half on each store, increment a counter in record
// "n" by load_versioned and save_if, again until written; returns the count
// (-1 if a call failed: Catch's assertions are not for other threads).
int64_t count_with_two_stores(PostgresStore& a, PostgresStore& b, int64_t now) {
  a.save("n", "0", now, 600);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kCountThreads; ++t)
    threads.emplace_back([&, t] {
      PostgresStore& store = t % 2 ? a : b;
      try {
        for (int i = 0; i < kCountIncrements; ++i) {
          std::string data;
          Version version = 0;
          do {
            if (!store.load_versioned("n", now, &data, &version)) throw std::runtime_error("lost");
          } while (store.save_if("n", "n", std::to_string(std::stoll(data) + 1), now, 600,
                                 version) != Commit::written);
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  for (auto& t : threads) t.join();
  std::string data;
  if (failures > 0 || !a.load("n", now, &data)) return -1;
  return std::stoll(data);
}

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

TEST_CASE("postgresql: parallel requests on one session") {
  PostgresServer pg;
  check_concurrency(pg.uri());
}

// One flow, no sections: each section would start a cluster of its own.
TEST_CASE("postgresql: save_if writes only at the loaded version, and moves atomically") {
  PostgresServer pg;
  RawPg raw(pg.port);
  PostgresStore store(store_options(pg));
  store.start();
  REQUIRE(store.atomic_save_if());
  const int64_t now = int64_t(std::time(nullptr));
  std::string data;
  Version loaded = 0, version = 0;
  store.save("a", "one", now, 60);
  REQUIRE(store.load_versioned("a", now, &data, &loaded));
  CHECK(data == "one");
  CHECK(store.save_if("a", "a", std::string("t\\wo\0", 5), now, 60, loaded) == Commit::written);
  REQUIRE(store.load_versioned("a", now, &data, &version));
  CHECK(data == std::string("t\\wo\0", 5));
  CHECK(version != loaded);

  // A stale version: changed, nothing written.
  CHECK(store.save_if("a", "a", "three", now, 60, loaded) == Commit::changed);
  CHECK(store.save_if("a", "b", "three", now, 60, loaded) == Commit::changed);
  CHECK(raw.text("SELECT string_agg(id || '=' || encode(data, 'hex'), ',') FROM sessions") ==
        "a=745c776f00");

  // An expired or deleted row: gone, nothing written.
  CHECK(store.save_if("a", "a", "three", now + 60, 60, version) == Commit::gone);
  CHECK(store.save_if("a", "b", "three", now + 60, 60, version) == Commit::gone);
  CHECK(raw.text("SELECT string_agg(id || '=' || encode(data, 'hex'), ',') FROM sessions") ==
        "a=745c776f00");
  store.save("e", "doomed", now, 60);
  REQUIRE(store.load_versioned("e", now, &data, &loaded));
  store.erase("e");
  CHECK(store.save_if("e", "e", "x", now, 60, loaded) == Commit::gone);
  CHECK(store.save_if("e", "f", "x", now, 60, loaded) == Commit::gone);
  CHECK(store.save_if("never", "never", "x", now, 60, 0) == Commit::gone);
  CHECK(raw.text("SELECT count(*) FROM sessions") == "1");

  // A moved ID: the new row written and the old one erased, in one statement.
  CHECK(store.save_if("a", "b", "moved", now, 60, version) == Commit::written);
  CHECK_FALSE(store.load("a", now, &data));
  REQUIRE(store.load("b", now, &data));
  CHECK(data == "moved");

  // Another writer's transaction holds the row: the move waits for it, then
  // checks the version that writer committed, and writes nothing.
  store.save("c", "c0", now, 60);
  REQUIRE(store.load_versioned("c", now, &data, &loaded));
  REQUIRE(raw.text("BEGIN; UPDATE sessions SET data = 'c1', version = version + 1 "
                   "WHERE id = 'c'").rfind("error", 0) != 0);
  Commit commit = Commit::written;
  std::thread mover([&] { commit = store.save_if("c", "d", "lost", now, 60, loaded); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  raw.text("COMMIT");
  mover.join();
  CHECK(commit == Commit::changed);
  REQUIRE(store.load("c", now, &data));
  CHECK(data == "c1");
  CHECK_FALSE(store.load("d", now, &data));

  // Two stores on the table (two processes, say), none of the core's
  // in-process turns: every increment counts.
  PostgresStore other(store_options(pg));
  other.start();
  CHECK(count_with_two_stores(store, other, now) == kCountThreads * kCountIncrements);
}

TEST_CASE("postgresql: a table of an earlier release gets its version column at open") {
  PostgresServer pg;
  RawPg raw(pg.port);
  REQUIRE(raw.text("CREATE TABLE sessions (id text PRIMARY KEY, data bytea NOT NULL, "
                   "expires_at timestamptz NOT NULL); CREATE INDEX sessions_expires_at_idx ON "
                   "sessions (expires_at); INSERT INTO sessions VALUES ('old', 'kept', "
                   "now() + interval '1 hour')").rfind("error", 0) != 0);
  PostgresStore store(store_options(pg));
  store.start();
  CHECK(raw.text("SELECT data_type || ' ' || is_nullable FROM information_schema.columns "
                 "WHERE table_name = 'sessions' AND column_name = 'version'") == "bigint NO");
  const int64_t now = int64_t(std::time(nullptr));
  std::string data;
  Version version = 1;
  REQUIRE(store.load_versioned("old", now, &data, &version));
  CHECK(data == "kept");
  CHECK(version == 0);
  CHECK(store.save_if("old", "old", "new", now, 60, version) == Commit::written);
  CHECK(store.save_if("old", "old", "newer", now, 60, version) == Commit::changed);
  // Opened again: nothing more to do.
  PostgresStore again(store_options(pg));
  again.start();
  REQUIRE(again.load("old", now, &data));
  CHECK(data == "new");
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
  // Left as it was: no column added, no index.
  CHECK(raw.text("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                 "information_schema.columns WHERE table_name = 'legacy'") == "name,value");
  CHECK(raw.text("SELECT count(*) FROM pg_indexes WHERE tablename = 'legacy'") == "0");
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

// One flow, no sections: each section would start a cluster of its own.
TEST_CASE("postgresql: principal_records lists a principal's rows from the principal column",
          "[principals]") {
  PostgresServer pg;
  RawPg raw(pg.port);
  PostgresStore store(store_options(pg));
  store.start();
  REQUIRE(store.indexes_principals());
  const int64_t now = int64_t(std::time(nullptr));
  const std::string a = principal_record("user:42", 1), b = principal_record("user:42", 2),
                    c = principal_record("user:42", 3), d = principal_record("user:7", 4),
                    e = principal_record("", 5);
  REQUIRE(record_principal(a) == "user:42");
  // Each writing path: save, move, save_if with a moved ID.
  store.save("a", a, now, 600);
  store.move("old-b", "b", b, now, 600);
  store.save("c0", c, now, 600);
  Version version = 0;
  std::string data;
  REQUIRE(store.load_versioned("c0", now, &data, &version));
  REQUIRE(store.save_if("c0", "c", c, now, 600, version) == Commit::written);
  store.save("d", d, now, 600);
  store.save("e", e, now, 600);

  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a", a}, {"b", b}, {"c", c}});
  CHECK(listed(store, "user:7", now) == Backend::KeyedRecords{{"d", d}});
  CHECK(listed(store, "user:404", now).empty());
  CHECK(listed(store, "user:4", now).empty());  // equality, not a prefix
  // The column holds the principal's bytes, NULL for none.
  CHECK(raw.text("SELECT string_agg(id || '=' || coalesce(convert_from(principal, 'UTF8'), "
                 "'NULL'), ',' ORDER BY id) FROM sessions") ==
        "a=user:42,b=user:42,c=user:42,d=user:7,e=NULL");
  // The index: partial (rows without a principal are not in it), used by the listing.
  CHECK(raw.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'sessions_principal_idx'") ==
        "CREATE INDEX sessions_principal_idx ON public.sessions USING btree (principal) WHERE "
        "(principal IS NOT NULL)");
  raw.text("SET enable_seqscan = off");
  CHECK_THAT(raw.lines("EXPLAIN SELECT id, data FROM sessions WHERE principal = 'user:42'::bytea "
                      "AND expires_at > now()"),
             Catch::Contains("sessions_principal_idx"));

  // An erased row leaves the listing.
  store.erase("b");
  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a", a}, {"c", c}});
  // A moved row (regenerate_id) is listed under its new key only, by move
  // and by save_if; a save_if that writes nothing moves nothing.
  store.move("a", "a2", a, now, 600);
  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a2", a}, {"c", c}});
  REQUIRE(store.load_versioned("a2", now, &data, &version));
  CHECK(store.save_if("a2", "a3", a, now, 600, version) == Commit::written);
  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a3", a}, {"c", c}});
  CHECK(store.save_if("a3", "a4", a, now, 600, version + 1) == Commit::changed);
  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a3", a}, {"c", c}});
  // An expired row is not listed, and the collector takes it out.
  store.save("x", principal_record("user:42", 6), now - 100, 10);
  CHECK(raw.text("SELECT count(*) FROM sessions WHERE principal = 'user:42'::bytea") == "3");
  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a3", a}, {"c", c}});
  CHECK(listed(store, "user:42", now + 600).empty());
  CHECK(store.collect(now) == 1);
  CHECK(raw.text("SELECT count(*) FROM sessions WHERE principal = 'user:42'::bytea") == "2");
  // A row whose principal changed is listed under the new one only: by a
  // save, by save_if in place, and to none (logged out without destroy).
  const std::string seven = principal_record("user:7", 8);
  store.save("a3", seven, now, 600);
  CHECK(listed(store, "user:7", now) == Backend::KeyedRecords{{"a3", seven}, {"d", d}});
  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"c", c}});
  REQUIRE(store.load_versioned("c", now, &data, &version));
  CHECK(store.save_if("c", "c", seven, now, 600, version) == Commit::written);
  CHECK(listed(store, "user:7", now).size() == 3);
  CHECK(listed(store, "user:42", now).empty());
  store.save("c", e, now, 600);
  CHECK(listed(store, "user:7", now).size() == 2);
  CHECK(raw.text("SELECT count(*) FROM sessions WHERE id = 'c' AND principal IS NULL") == "1");
  // Any bytes of UTF-8, NUL included (bytea, not text, which refuses NUL).
  const std::string odd = std::string("us\0er/\xc3\xa9", 8) + std::string(247, 'z');
  REQUIRE(odd.size() == 255);
  const std::string o = principal_record(odd, 9);
  store.save("o", o, now, 600);
  CHECK(listed(store, odd, now) == Backend::KeyedRecords{{"o", o}});
  CHECK(listed(store, odd.substr(0, 2), now).empty());
}

TEST_CASE("postgresql: a table of an earlier release gets its principal column and index at open",
          "[principals]") {
  PostgresServer pg;
  RawPg raw(pg.port);
  // The previous release's layout (a version column, no principal), and
  // the first release's (neither).
  REQUIRE(raw.text("CREATE TABLE sessions (id text PRIMARY KEY, data bytea NOT NULL, "
                   "expires_at timestamptz NOT NULL, version bigint NOT NULL DEFAULT 0); "
                   "CREATE INDEX sessions_expires_at_idx ON sessions (expires_at); "
                   "INSERT INTO sessions VALUES ('old', 'kept', now() + interval '1 hour', 3); "
                   "CREATE TABLE first (id text PRIMARY KEY, data bytea NOT NULL, "
                   "expires_at timestamptz NOT NULL); "
                   "INSERT INTO first VALUES ('old', 'kept', now() + interval '1 hour')")
              .rfind("error", 0) != 0);
  const int64_t now = int64_t(std::time(nullptr));
  for (const char* table : {"sessions", "first"}) {
    INFO(table);
    const std::string t = table;
    PostgresStore::Options options = store_options(pg);
    options.table = t;
    PostgresStore store(options);
    store.start();
    CHECK(raw.text("SELECT data_type || ' ' || is_nullable FROM information_schema.columns "
                   "WHERE table_name = '" + t + "' AND column_name = 'principal'") == "bytea YES");
    CHECK(raw.text("SELECT count(*) FROM information_schema.columns WHERE table_name = '" + t +
                   "' AND column_name = 'version'") == "1");
    CHECK(raw.text("SELECT count(*) FROM pg_indexes WHERE indexname = '" + t +
                   "_principal_idx'") == "1");
    std::string data;
    Version version = 0;
    REQUIRE(store.load_versioned("old", now, &data, &version));
    CHECK(data == "kept");
    CHECK(raw.text("SELECT count(*) FROM " + t + " WHERE principal IS NULL") == "1");
    // It works: the old row rewritten with a principal is listed.
    CHECK(store.save_if("old", "old", principal_record("user:42", 1), now, 60, version) ==
          Commit::written);
    store.save("new", principal_record("user:42", 2), now, 60);
    CHECK(listed(store, "user:42", now).size() == 2);
    // Opened again: nothing more to do.
    PostgresStore again(options);
    again.start();
    CHECK(listed(again, "user:42", now).size() == 2);
  }
}
