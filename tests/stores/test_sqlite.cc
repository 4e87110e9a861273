// The sqlite: store on a database file in a temporary directory.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "record.h"
#include "servers.h"
#include "sqlite_store.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// A plain sqlite3 connection to look at what the store wrote.
struct RawDb {
  sqlite3* db = nullptr;
  explicit RawDb(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
  ~RawDb() { sqlite3_close(db); }
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return out;
  }
  int exec(const std::string& sql) { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
  // Every row's `column`, joined with ','.
  std::string rows(const std::string& sql, int column = 0) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, column);
      out += (out.empty() ? "" : ",") + std::string(text ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(stmt);
    return out;
  }
};

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
int64_t count_with_two_stores(SqliteStore& a, SqliteStore& b, int64_t now) {
  a.save("n", "0", now, 600);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kCountThreads; ++t)
    threads.emplace_back([&, t] {
      SqliteStore& store = t % 2 ? a : b;
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

TEST_CASE("sqlite: the store contract") {
  TempDir dir;
  const std::string uri = "sqlite://" + dir.path() + "/sessions.db";
  SECTION("foreign value") { check_foreign_value(uri); }
  SECTION("hash_keys") { check_hash_keys(uri); }
  SECTION("concurrent cycles, pool smaller than the threads") {
    check_concurrent_cycles(uri + "?pool=3&synchronous=normal");
  }
}

TEST_CASE("sqlite: parallel requests on one session") {
  TempDir dir;
  check_concurrency("sqlite://" + dir.path() + "/sessions.db?synchronous=normal");
}

TEST_CASE("sqlite: save_if writes only at the loaded version, and moves atomically") {
  TempDir dir;
  SqliteStore store({dir.path() + "/s.db"});
  store.start();
  REQUIRE(store.atomic_save_if());
  RawDb raw(dir.path() + "/s.db");
  const int64_t now = 1'800'000'000;
  std::string data;
  Version loaded = 0, version = 0;
  store.save("a", "one", now, 60);
  REQUIRE(store.load_versioned("a", now, &data, &loaded));
  CHECK(data == "one");
  CHECK(store.save_if("a", "a", "two", now, 60, loaded) == Commit::written);
  REQUIRE(store.load_versioned("a", now, &data, &version));
  CHECK(data == "two");
  CHECK(version != loaded);
  SECTION("a stale version: changed, nothing written") {
    CHECK(store.save_if("a", "a", "three", now, 60, loaded) == Commit::changed);
    CHECK(store.save_if("a", "b", "three", now, 60, loaded) == Commit::changed);
    REQUIRE(store.load("a", now, &data));
    CHECK(data == "two");
    CHECK_FALSE(store.load("b", now, &data));
  }
  SECTION("a deleted or expired row: gone, nothing written") {
    CHECK(store.save_if("a", "a", "three", now + 60, 60, version) == Commit::gone);  // expired
    CHECK(store.save_if("a", "b", "three", now + 60, 60, version) == Commit::gone);
    CHECK(raw.text("SELECT data FROM sessions WHERE id = 'a'") == "two");
    store.erase("a");
    CHECK(store.save_if("a", "a", "three", now, 60, version) == Commit::gone);
    CHECK(store.save_if("never", "never", "x", now, 60, 0) == Commit::gone);
    CHECK(raw.text("SELECT count(*) FROM sessions") == "0");
  }
  SECTION("a moved ID: the new row written and the old one erased, or neither") {
    CHECK(store.save_if("a", "b", "moved", now, 60, version) == Commit::written);
    CHECK_FALSE(store.load("a", now, &data));
    REQUIRE(store.load_versioned("b", now, &data, &version));
    CHECK(data == "moved");
    // Another writer holding the write lock: the move waits for it, then
    // sees the version that writer left.
    store.save("c", "c0", now, 60);
    REQUIRE(store.load_versioned("c", now, &data, &loaded));
    REQUIRE(raw.exec("BEGIN IMMEDIATE; UPDATE sessions SET data = 'c1', version = version + 1 "
                     "WHERE id = 'c'") == SQLITE_OK);
    std::thread commit_later([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      raw.exec("COMMIT");
    });
    CHECK(store.save_if("c", "d", "lost", now, 60, loaded) == Commit::changed);
    commit_later.join();
    REQUIRE(store.load("c", now, &data));
    CHECK(data == "c1");
    CHECK_FALSE(store.load("d", now, &data));
  }
  SECTION("two stores on the file (two processes, say), none of the core's turns") {
    SqliteStore::Options options{dir.path() + "/s.db"};
    options.synchronous = "NORMAL";
    SqliteStore a(options), b(options);
    a.start();
    b.start();
    CHECK(count_with_two_stores(a, b, now) == kCountThreads * kCountIncrements);
  }
}

TEST_CASE("sqlite: a table of an earlier release gets its version column at open") {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  {
    RawDb old(path);
    REQUIRE(old.exec("CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, "
                     "expires_at INTEGER NOT NULL); CREATE INDEX sessions_expires_at ON "
                     "sessions (expires_at); INSERT INTO sessions VALUES ('old', 'kept', "
                     "1800000060)") == SQLITE_OK);
  }
  SqliteStore store({path});
  store.start();
  RawDb raw(path);
  CHECK(raw.text("SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'version'") ==
        "1");
  std::string data;
  Version version = 1;
  REQUIRE(store.load_versioned("old", 1'800'000'000, &data, &version));
  CHECK(data == "kept");
  CHECK(version == 0);
  CHECK(store.save_if("old", "old", "new", 1'800'000'000, 60, version) == Commit::written);
  CHECK(store.save_if("old", "old", "newer", 1'800'000'000, 60, version) == Commit::changed);
  // Opened again: nothing more to do.
  SqliteStore again({path});
  again.start();
  REQUIRE(again.load("old", 1'800'000'000, &data));
  CHECK(data == "new");
}

TEST_CASE("sqlite: WAL mode, the table and its expiry index") {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  Fixture f("sqlite://" + path + "?table=app_sessions", {}, false);
  Browser b;
  const std::string id = log_in(f, b);
  RawDb raw(path);
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
  CHECK(raw.text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                 "'app_sessions' AND sql LIKE '%expires_at%'") == "app_sessions_expires_at");
  CHECK(raw.text("SELECT count(*) FROM app_sessions WHERE id = '" + id + "'") == "1");
  // The row expires with the cookie's max age (30 days by default).
  const int64_t expires = std::stoll(raw.text("SELECT expires_at FROM app_sessions"));
  CHECK(std::abs(expires - (int64_t(std::time(nullptr)) + 30 * 86400)) < 10);
}

TEST_CASE("sqlite: unsafe table names are refused, and bound values cannot inject SQL") {
  TempDir dir;
  const std::string uri = "sqlite://" + dir.path() + "/s.db";
  for (const char* table : {"bad-name", "x;DROP%20TABLE%20y", "1abc", "", "a%22b", "t%00"})
    CHECK(open_error(uri + "?table=" + table) == Errc::bad_option);
  CHECK(open_error(uri + "?table=" + std::string(64, 'a')) == Errc::bad_option);

  SqliteStore store({dir.path() + "/s.db"});
  store.start();
  const std::string hostile = "x'); DROP TABLE sessions; --";
  store.save(hostile, "data", 1000, 60);
  std::string data;
  REQUIRE(store.load(hostile, 1000, &data));
  CHECK(data == "data");
  RawDb raw(dir.path() + "/s.db");
  CHECK(raw.text("SELECT count(*) FROM sessions") == "1");
}

TEST_CASE("sqlite: the collector deletes expired rows in batches, and only those") {
  TempDir dir;
  SqliteStore::Options options;
  options.path = dir.path() + "/s.db";
  options.synchronous = "NORMAL";
  SqliteStore store(options);
  store.start();
  const int64_t now = 1'800'000'000;
  const int expired = SqliteStore::kCollectBatch * 2 + 500;
  for (int i = 0; i < expired; ++i) store.save("old" + std::to_string(i), "x", now - 100, 10);
  for (int i = 0; i < 10; ++i) store.save("live" + std::to_string(i), "x", now, 600);
  std::string data;
  CHECK_FALSE(store.load("old1", now, &data));  // expired rows are never loaded
  CHECK(store.collect(now) == size_t(expired));
  CHECK(store.collect(now) == 0);
  CHECK(store.load("live3", now, &data));
}

TEST_CASE("sqlite: the background collector runs without any request") {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  Fixture f("sqlite://" + path + "?gc_interval=1s", {{"max_age", "60"}}, true);
  f.now = int64_t(std::time(nullptr)) - 10000;  // saved long ago: long expired
  Browser b;
  log_in(f, b);
  RawDb raw(path);
  REQUIRE(raw.text("SELECT count(*) FROM sessions") == "1");
  for (int i = 0; i < 40 && raw.text("SELECT count(*) FROM sessions") != "0"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(raw.text("SELECT count(*) FROM sessions") == "0");
}

TEST_CASE("sqlite: a database locked by someone else, then released") {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  Fixture f("sqlite://" + path + "?busy_timeout_ms=200", {}, false);
  Browser b;
  log_in(f, b);
  RawDb locker(path);
  REQUIRE(locker.exec("BEGIN EXCLUSIVE") == SQLITE_OK);
  const auto start = std::chrono::steady_clock::now();
  Errc rc = b.request([&](Request& r) { r.session(f.store, "sid").set("x", Value(1)); });
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(rc == Errc::store_unavailable);
  CHECK(b.last_set_cookies.empty());
  CHECK(waited >= std::chrono::milliseconds(150));
  CHECK(waited < std::chrono::milliseconds(2000));
  REQUIRE(locker.exec("COMMIT") == SQLITE_OK);
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(*s.get("user_id") == Value(42));
    CHECK(s.get("x") == nullptr);  // the failed save wrote nothing
    s.set("x", Value(2));
  });
  CHECK(b.last_set_cookies.size() == 1);
}

TEST_CASE("sqlite: bad locations and files that are not databases") {
  TempDir dir;
  CHECK(open_error("sqlite://relative.db") == Errc::bad_uri);
  CHECK(open_error("sqlite:") == Errc::bad_uri);
  CHECK(open_error("sqlite:///nonexistent-dir/x/s.db") == Errc::store_unavailable);
  std::ofstream(dir.path() + "/junk.db") << std::string(8192, 'j');
  CHECK(open_error("sqlite://" + dir.path() + "/junk.db") == Errc::store_unavailable);
  // A table of that name with another layout, left as it was.
  RawDb raw(dir.path() + "/other.db");
  raw.exec("CREATE TABLE sessions (name TEXT, value TEXT)");
  CHECK(open_error("sqlite://" + dir.path() + "/other.db") == Errc::store_unavailable);
  CHECK(raw.text("SELECT group_concat(name) FROM pragma_table_info('sessions')") == "name,value");
  CHECK(raw.text("SELECT count(*) FROM sqlite_master WHERE type = 'index'") == "0");
  CHECK(open_error("sqlite://" + dir.path() + "/s.db?synchronous=sometimes") == Errc::bad_option);
  CHECK(open_error("sqlite://" + dir.path() + "/s.db?prefix=x") == Errc::bad_option);
}

TEST_CASE("sqlite: several processes share one database") {
  TempDir dir;
  const std::string uri = "sqlite://" + dir.path() + "/s.db?synchronous=normal";
  { Fixture create(uri); }  // the table, before the processes race for it
  constexpr int kProcesses = 3, kCycles = 150;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int failures = 0;
      try {
        Fixture f(uri, {}, false);
        Browser b;
        for (int i = 0; i < kCycles; ++i) {
          b.request([&](Request& r) {
            Session& s = r.session(f.store, "sid");
            const Value* count = s.get("count");
            if ((count ? *count->get_if<int64_t>() : 0) != i) ++failures;
            s.set("count", Value(int64_t(i + 1)));
            if (i % 50 == 49) s.regenerate_id();
          });
        }
      } catch (...) {
        failures = 1000;
      }
      ::_exit(failures == 0 ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  RawDb raw(dir.path() + "/s.db");
  CHECK(raw.text("SELECT count(*) FROM sessions") == std::to_string(kProcesses));
}

TEST_CASE("sqlite: nothing acknowledged is lost when the process is killed under load") {
  TempDir dir;
  const std::string uri = "sqlite://" + dir.path() + "/s.db";
  { Fixture create(uri); }
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The writer: 8 threads saving new sessions; each acknowledged save is
    // reported on the pipe as "jar value\n" (one write: atomic under PIPE_BUF).
    ::close(fds[0]);
    Fixture f(uri, {}, false);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int64_t i = 0;; ++i) {
          Browser b;
          const int64_t value = t * 1'000'000 + i;
          if (b.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(value)); }) ==
              Errc::ok) {
            std::string line = b.jar + " " + std::to_string(value) + "\n";
            if (::write(fds[1], line.data(), line.size()) < 0) ::_exit(2);
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string acknowledged;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) acknowledged.append(buf, size_t(n));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  reader.join();
  ::close(fds[0]);

  Fixture f(uri, {}, false);
  std::istringstream lines(acknowledged);
  std::string jar;
  int64_t value = 0;
  size_t count = 0, lost = 0;
  while (lines >> jar >> value) {
    ++count;
    Browser b{jar, {}};
    b.request([&](Request& r) {
      const Value* v = r.session(f.store, "sid").get("v");
      if (!v || *v != Value(value)) ++lost;
    });
  }
  INFO("acknowledged saves: " << count);
  CHECK(count > 100);
  CHECK(lost == 0);
}

TEST_CASE("sqlite: principal_records lists a principal's rows from the principal column",
          "[principals]") {
  TempDir dir;
  SqliteStore store({dir.path() + "/s.db"});
  store.start();
  REQUIRE(store.indexes_principals());
  RawDb raw(dir.path() + "/s.db");
  const int64_t now = 1'800'000'000;
  const std::string a = principal_record("user:42", 1), b = principal_record("user:42", 2),
                    c = principal_record("user:42", 3), d = principal_record("user:7", 4),
                    e = principal_record("", 5);
  REQUIRE(record_principal(a) == "user:42");
  REQUIRE(record_principal(e).empty());
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
  CHECK(raw.rows("SELECT id || '=' || coalesce(CAST(principal AS TEXT), 'NULL') FROM sessions "
                 "ORDER BY id") == "a=user:42,b=user:42,c=user:42,d=user:7,e=NULL");
  CHECK(raw.text("SELECT typeof(principal) FROM sessions WHERE id = 'a'") == "blob");

  SECTION("an erased row leaves the listing") {
    store.erase("b");
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a", a}, {"c", c}});
  }
  SECTION("a moved row is listed under its new key only") {
    store.move("a", "a2", a, now, 600);  // regenerate_id
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a2", a}, {"b", b}, {"c", c}});
    REQUIRE(store.load_versioned("a2", now, &data, &version));
    CHECK(store.save_if("a2", "a3", a, now, 600, version) == Commit::written);
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a3", a}, {"b", b}, {"c", c}});
    // A save_if that writes nothing moves nothing.
    CHECK(store.save_if("a3", "a4", a, now, 600, version + 1) == Commit::changed);
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a3", a}, {"b", b}, {"c", c}});
  }
  SECTION("an expired row is not listed, and the collector takes it out") {
    const std::string x = principal_record("user:42", 6);
    store.save("x", x, now, 60);
    CHECK(listed(store, "user:42", now).size() == 4);
    CHECK(listed(store, "user:42", now + 60) == Backend::KeyedRecords{{"a", a}, {"b", b}, {"c", c}});
    CHECK(store.collect(now + 60) == 1);
    CHECK(raw.text("SELECT count(*) FROM sessions WHERE principal = CAST('user:42' AS BLOB)") ==
          "3");
    // All of them expired: none listed.
    CHECK(listed(store, "user:42", now + 600).empty());
  }
  SECTION("a row whose principal changed is listed under the new one only") {
    const std::string seven = principal_record("user:7", 8);
    store.save("a", seven, now, 600);
    CHECK(listed(store, "user:7", now) == Backend::KeyedRecords{{"a", seven}, {"d", d}});
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"b", b}, {"c", c}});
    // Through save_if in place, and to none.
    REQUIRE(store.load_versioned("b", now, &data, &version));
    CHECK(store.save_if("b", "b", seven, now, 600, version) == Commit::written);
    CHECK(listed(store, "user:7", now).size() == 3);
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"c", c}});
    store.save("c", e, now, 600);  // logged out without destroy
    CHECK(listed(store, "user:42", now).empty());
    CHECK(raw.text("SELECT count(*) FROM sessions WHERE id = 'c' AND principal IS NULL") == "1");
  }
}

TEST_CASE("sqlite: the principal index is partial, and the listing uses it", "[principals]") {
  TempDir dir;
  SqliteStore store({dir.path() + "/s.db"});
  store.start();
  RawDb raw(dir.path() + "/s.db");
  CHECK(raw.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = "
                 "'sessions_principal'") ==
        "CREATE INDEX sessions_principal ON sessions (principal) WHERE principal IS NOT NULL");
  // The store's own query, as it prepares it.
  CHECK_THAT(raw.rows("EXPLAIN QUERY PLAN SELECT id, data FROM sessions WHERE principal = "
                      "CAST('user:42' AS BLOB) AND expires_at > 1800000000", 3),
             Catch::Contains("USING INDEX sessions_principal"));
  // Rows without a principal are not in it.
  for (int i = 0; i < 50; ++i) store.save("anon" + std::to_string(i), "x", 1'800'000'000, 60);
  store.save("p", principal_record("user:1", 1), 1'800'000'000, 60);
  CHECK(raw.text("SELECT count(*) FROM sessions INDEXED BY sessions_principal WHERE principal "
                 "IS NOT NULL") == "1");
}

TEST_CASE("sqlite: a table of an earlier release gets its principal column and index at open",
          "[principals]") {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  const int64_t now = 1'800'000'000;
  {
    // The previous release's layout: a version column, no principal.
    RawDb old(path);
    REQUIRE(old.exec("CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, "
                     "expires_at INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 0); "
                     "CREATE INDEX sessions_expires_at ON sessions (expires_at); "
                     "INSERT INTO sessions VALUES ('old', 'kept', 1800000060, 3); "
                     // The first release's: neither column.
                     "CREATE TABLE first (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, "
                     "expires_at INTEGER NOT NULL); "
                     "INSERT INTO first VALUES ('old', 'kept', 1800000060)") == SQLITE_OK);
  }
  for (const char* table : {"sessions", "first"}) {
    INFO(table);
    SqliteStore::Options options{path};
    options.table = table;
    SqliteStore store(options);
    store.start();
    RawDb raw(path);
    const std::string t = table;
    CHECK(raw.text("SELECT type || ' ' || \"notnull\" FROM pragma_table_info('" + t +
                   "') WHERE name = 'principal'") == "BLOB 0");
    CHECK(raw.text("SELECT count(*) FROM pragma_table_info('" + t + "') WHERE name = 'version'") ==
          "1");
    CHECK(raw.text("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '" + t +
                   "_principal'") == "1");
    std::string data;
    Version version = 0;
    REQUIRE(store.load_versioned("old", now, &data, &version));
    CHECK(data == "kept");
    CHECK(raw.text("SELECT count(*) FROM " + t + " WHERE principal IS NULL") == "1");
    // It works: the old row rewritten with a principal is listed.
    const std::string mine = principal_record("user:42", 1);
    CHECK(store.save_if("old", "old", mine, now, 60, version) == Commit::written);
    store.save("new", principal_record("user:42", 2), now, 60);
    CHECK(listed(store, "user:42", now).size() == 2);
    // Opened again: nothing more to do.
    SqliteStore again(options);
    again.start();
    CHECK(listed(again, "user:42", now).size() == 2);
  }
}
