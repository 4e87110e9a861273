// The file: store in a temporary directory.
#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <thread>
#include <filesystem>
#include <fstream>

#include "concurrency.h"
#include "contract.h"
#include "file_store.h"
#include "base64url.h"
#include "harness.h"
#include "principals.h"
#include "record.h"
#include "servers.h"

using namespace sessions::internal;
using namespace sessions::testing;
namespace fs = std::filesystem;

namespace {

// The directory's entries but the lock files' directory, which the store
// makes at start and never removes (a test of its own checks it).
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != FileStore::kLockDir) names.push_back(entry.path().filename());
  return names;
}

// Increments "n" in the session of `header` under concurrency=cas, the whole
// request again on each conflict; returns how many conflicts it retried, or
// -1 on any other failure.
int increment_with_retry(Fixture& f, const std::string& header) {
  int conflicts = 0;
  for (;;) {
    Request r(header);
    Session& s = r.session(f.store, "sid");
    if (s.status() != SESS_STATUS_VALID) return -1;
    const Value* n = s.get("n");
    s.set("n", Value(n ? *n->get_if<int64_t>() + 1 : int64_t{1}));
    std::string message;
    const Errc rc = r.finish(&message);
    if (rc == Errc::ok) return conflicts;
    if (rc != Errc::conflict) return -1;
    ++conflicts;
  }
}

// A stored record of `principal` (none when empty), told apart by `n`.
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

// The path of a principal's sidecar: base64url of its SHA-256.
std::string sidecar_path(const std::string& dir, const std::string& principal) {
  unsigned char digest[32];
  unsigned int size = 0;
  REQUIRE(EVP_Digest(principal.data(), principal.size(), digest, &size, EVP_sha256(), nullptr));
  std::string name;
  base64url_encode(std::string_view(reinterpret_cast<char*>(digest), size), &name);
  return dir + "/" + FileStore::kPrincipalDir + "/" + name;
}

// The sidecar's lines; none when it does not exist.
std::vector<std::string> sidecar_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("file: the store contract") {
  TempDir dir;
  const std::string uri = "file://" + dir.path() + "/sessions";
  SECTION("foreign value") { check_foreign_value(uri); }
  SECTION("hash_keys") { check_hash_keys(uri); }
}

TEST_CASE("file: one 0600 file per session, no temporary file left") {
  TempDir dir;
  Fixture f("file://" + dir.path(), {}, false);
  Browser b;
  const std::string id = log_in(f, b);
  REQUIRE(names_in(dir.path()) == std::vector<std::string>{id});
  struct stat st;
  REQUIRE(::stat((dir.path() + "/" + id).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // The modification time is the expiry: 30 days by default.
  CHECK(st.st_mtime >= std::time(nullptr) + 30 * 86400 - 5);
}

TEST_CASE("file: keys that could leave the directory are refused") {
  TempDir dir;
  FileStore store(dir.path(), {});
  store.start();
  std::string data;
  const std::vector<std::string> keys = {"../escape", "a/b", "", ".hidden",
                                         std::string("a\0b", 3), std::string(200, 'a')};
  for (const std::string& key : keys) {
    CHECK_THROWS_AS(store.load(key, 0, &data), Error);
    CHECK_THROWS_AS(store.save(key, "x", 0, 10), Error);
    CHECK_THROWS_AS(store.save_if("safe", key, "x", 0, 10, 0), Error);
    CHECK_THROWS_AS(store.save_if(key, "safe", "x", 0, 10, 0), Error);
  }
  CHECK(names_in(dir.path()).empty());
}

TEST_CASE("file: the collector removes expired files and abandoned temporary files") {
  TempDir dir;
  FileStore store(dir.path(), {false, std::chrono::seconds(3600)});
  store.start();
  const int64_t now = int64_t(std::time(nullptr));
  store.save("live", "x", now, 7200);
  store.save("expired", "x", now - 1000, 10);
  store.save("just-expired", "x", now - 20, 10);  // within the grace period
  std::ofstream(dir.path() + "/.tmp-abc-live2") << "half";
  std::ofstream(dir.path() + "/not-ours.txt") << "keep";
  CHECK(store.collect(now) == 1);
  auto names = names_in(dir.path());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{".tmp-abc-live2", "just-expired", "live", "not-ours.txt"});
  // An hour later the temporary file counts as abandoned.
  CHECK(store.collect(now + FileStore::kAbandonedTempAge + 100) == 2);
  CHECK(names_in(dir.path()).size() == 2);
}

TEST_CASE("file: the background collector runs without any request") {
  TempDir dir;
  Fixture f("file://" + dir.path() + "?gc_interval=1s&fsync=false", {{"max_age", "60"}}, true);
  f.now = int64_t(std::time(nullptr)) - 10000;  // a session saved long ago
  Browser b;
  log_in(f, b);
  REQUIRE(names_in(dir.path()).size() == 1);
  for (int i = 0; i < 40 && !names_in(dir.path()).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(names_in(dir.path()).empty());
}

TEST_CASE("file: several processes share one directory") {
  TempDir dir;
  const std::string uri = "file://" + dir.path() + "?fsync=false";
  constexpr int kProcesses = 3, kCycles = 200;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // No Catch2 assertions in the child: the exit status is the result.
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
  CHECK(names_in(dir.path()).size() == kProcesses);  // one live file each
}

TEST_CASE("file: parallel requests on one session") {
  TempDir dir;
  check_concurrency("file://" + dir.path() + "?fsync=false");
}

TEST_CASE("file: save_if checks and writes under a lock file") {
  TempDir dir;
  FileStore store(dir.path(), {false, std::chrono::seconds(3600)});
  store.start();
  const int64_t now = int64_t(std::time(nullptr));
  store.save("a", "one", now, 60);
  std::string data;
  Version loaded = 0;
  REQUIRE(store.load_versioned("a", now, &data, &loaded));
  CHECK(store.atomic_save_if());

  SECTION("a stale version is refused and nothing is written") {
    store.save("a", "two", now, 60);
    CHECK(store.save_if("a", "a", "three", now, 60, loaded) == Commit::changed);
    REQUIRE(store.load("a", now, &data));
    CHECK(data == "two");
    REQUIRE(store.load_versioned("a", now, &data, &loaded));
    CHECK(store.save_if("a", "a", "three", now, 60, loaded) == Commit::written);
    REQUIRE(store.load("a", now, &data));
    CHECK(data == "three");
  }
  SECTION("a deleted or expired record is gone, and stays so") {
    store.erase("a");
    CHECK(store.save_if("a", "a", "two", now, 60, loaded) == Commit::gone);
    CHECK_FALSE(store.load("a", now, &data));
    store.save("b", "one", now - 100, 10);
    REQUIRE(store.load_versioned("b", now - 100, &data, &loaded));
    CHECK(store.save_if("b", "b", "two", now, 60, loaded) == Commit::gone);
    CHECK_FALSE(store.load("b", now, &data));
  }
  SECTION("a moved ID: the old file is checked, the new written, the old removed") {
    store.save("a", "two", now, 60);
    CHECK(store.save_if("a", "b", "moved", now, 60, loaded) == Commit::changed);
    CHECK_FALSE(store.load("b", now, &data));
    REQUIRE(store.load_versioned("a", now, &data, &loaded));
    CHECK(store.save_if("a", "b", "moved", now, 60, loaded) == Commit::written);
    CHECK_FALSE(store.load("a", now, &data));
    REQUIRE(store.load("b", now, &data));
    CHECK(data == "moved");
    CHECK(store.save_if("a", "c", "late", now, 60, loaded) == Commit::gone);
    CHECK(names_in(dir.path()) == std::vector<std::string>{"b"});  // no temporary file left
  }
  SECTION("the lock files are a fixed set, which the collector leaves alone") {
    for (int i = 0; i < 200; ++i) store.save("s" + std::to_string(i), "x", now - 1000, 10);
    CHECK(store.collect(now) == 200);
    CHECK(size_t(std::distance(fs::directory_iterator(dir.path() + "/" + FileStore::kLockDir),
                               fs::directory_iterator())) == FileStore::kLockStripes);
    CHECK(store.save_if("a", "a", "two", now, 60, loaded) == Commit::written);
  }
}

TEST_CASE("file: cas across processes counts every increment") {
  TempDir dir;
  const std::string uri = "file://" + dir.path() + "?fsync=false";
  const OptionList cas = {{"concurrency", "cas"}};
  constexpr int kProcesses = 2, kIncrements = 150;
  std::string header;
  {
    // Closed before the fork: a child inherits no store and no thread.
    Fixture f(uri, cas, false);
    Browser b;
    log_in(f, b);
    header = b.jar;
  }
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // No Catch2 assertions in the child: the exit status is the result.
      int status = 0;
      try {
        Fixture f(uri, cas, false);
        for (int i = 0; i < kIncrements && status == 0; ++i)
          if (increment_with_retry(f, header) < 0) status = 1;
      } catch (...) {
        status = 2;
      }
      ::_exit(status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  Fixture f(uri, cas, false);
  Request r(header);
  const Value* n = r.session(f.store, "sid").get("n");
  REQUIRE(n);
  CHECK(*n->get_if<int64_t>() == kProcesses * kIncrements);
}

TEST_CASE("file: bad locations and a directory that goes away") {
  CHECK(open_error("file://relative/dir") == Errc::bad_uri);
  CHECK(open_error("file:") == Errc::bad_uri);
  CHECK(open_error("file:///etc/passwd/sessions") == Errc::store_unavailable);  // not a directory
  CHECK(open_error("file:///nonexistent-parent/x/y") == Errc::store_unavailable);
  CHECK(open_error("file:///tmp?gc_interval=0") == Errc::bad_option);

  TempDir dir;
  Fixture f("file://" + dir.path() + "/s", {}, false);
  Browser b;
  log_in(f, b);
  fs::remove_all(dir.path() + "/s");
  Browser other;
  CHECK(other.request([&](Request& r) { r.session(f.store, "sid").set("x", Value(1)); }) ==
        Errc::store_unavailable);
  CHECK(other.last_set_cookies.empty());
}

TEST_CASE("file: principal_records lists a principal's records from its sidecar",
          "[principals]") {
  TempDir dir;
  FileStore store(dir.path(), {false, std::chrono::seconds(3600)});
  store.start();
  REQUIRE(store.indexes_principals());
  const int64_t now = int64_t(std::time(nullptr));
  const std::string sidecar = sidecar_path(dir.path(), "user:42");
  const std::string a = principal_record("user:42", 1), b = principal_record("user:42", 2),
                    c = principal_record("user:42", 3);

  // Records without a principal make no sidecar, nor its directory.
  store.save("e", principal_record("", 5), now, 600);
  store.move("e", "e2", principal_record("", 5), now, 600);
  CHECK_FALSE(fs::exists(dir.path() + "/" + FileStore::kPrincipalDir));

  // Each writing path: save, move, save_if.
  store.save("a", a, now, 600);
  store.move("old-b", "b", b, now, 3600);
  store.save("c0", c, now, 60);
  Version version = 0;
  std::string data;
  REQUIRE(store.load_versioned("c0", now, &data, &version));
  REQUIRE(store.save_if("c0", "c", c, now, 60, version) == Commit::written);
  store.save("d", principal_record("user:7", 4), now, 600);

  CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a", a}, {"b", b}, {"c", c}});
  auto lines = sidecar_lines(sidecar);
  std::sort(lines.begin(), lines.end());
  CHECK(lines == std::vector<std::string>{std::to_string(now + 60) + " c",
                                          std::to_string(now + 600) + " a",
                                          std::to_string(now + 3600) + " b"});
  struct stat st;
  REQUIRE(::stat(sidecar.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_mtime == now + 3600);  // the latest expiry
  CHECK(listed(store, "user:7", now).size() == 1);
  CHECK(listed(store, "nobody", now).empty());
  // Two sidecars, and no temporary file left.
  CHECK(std::distance(fs::directory_iterator(dir.path() + "/" + FileStore::kPrincipalDir),
                      fs::directory_iterator()) == 2);

  SECTION("an erased record leaves the listing and the sidecar") {
    store.erase("b");
    CHECK(sidecar_lines(sidecar).size() == 3);  // until listed or rewritten
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a", a}, {"c", c}});
    CHECK(sidecar_lines(sidecar).size() == 2);
    store.erase("c");
    store.save("a", a, now, 600);  // a rewrite drops it too
    CHECK(sidecar_lines(sidecar) == std::vector<std::string>{std::to_string(now + 600) + " a"});
    // The last one gone: listing removes the sidecar.
    store.erase("a");
    CHECK(listed(store, "user:42", now).empty());
    CHECK_FALSE(fs::exists(sidecar));
    store.save("a", a, now, 600);  // and a save makes it again
    CHECK(listed(store, "user:42", now).size() == 1);
  }
  SECTION("a moved record is listed under its new key only") {
    store.move("a", "a2", a, now, 600);
    CHECK(sidecar_lines(sidecar).size() == 3);  // "a" out, in the move
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a2", a}, {"b", b}, {"c", c}});
    REQUIRE(store.load_versioned("a2", now, &data, &version));
    CHECK(store.save_if("a2", "a3", a, now, 600, version) == Commit::written);
    CHECK(sidecar_lines(sidecar).size() == 3);
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a3", a}, {"b", b}, {"c", c}});
  }
  SECTION("an expired record leaves the listing and the sidecar") {
    store.save("x", principal_record("user:42", 6), now - 100, 1);  // expired at now - 99
    CHECK(sidecar_lines(sidecar).size() == 4);
    CHECK(listed(store, "user:42", now).size() == 3);
    CHECK(sidecar_lines(sidecar).size() == 3);
    // Writes drop the expired too, listed or not.
    store.save("y", principal_record("user:42", 7), now - 100, 1);
    store.save("a", a, now, 600);
    CHECK(sidecar_lines(sidecar).size() == 3);
    // Once every record expired, the collector removes the sidecars too.
    // 7 record files (x and y among them) and 2 sidecars.
    CHECK(store.collect(now + 3600 + FileStore::kCollectGrace + 1) == 9);
    CHECK(fs::is_empty(dir.path() + "/" + FileStore::kPrincipalDir));
  }
  SECTION("a record whose principal changed is listed under the new one") {
    const std::string moved = principal_record("user:7", 8);
    store.save("a", moved, now, 600);  // user:42's line goes stale
    CHECK(listed(store, "user:7", now) ==
          Backend::KeyedRecords{{"a", moved}, {"d", principal_record("user:7", 4)}});
    const auto forty_two = listed(store, "user:42", now);
    for (const auto& [key, record] : forty_two) CHECK(record_principal(record) == "user:42");
    CHECK(forty_two == Backend::KeyedRecords{{"b", b}, {"c", c}});
    CHECK(sidecar_lines(sidecar).size() == 2);  // the stale line, dropped
    store.save("a", a, now, 600);
    CHECK(listed(store, "user:42", now).size() == 3);
  }
  SECTION("rewriting one record a thousand times does not grow the sidecar") {
    for (int i = 0; i < 1000; ++i) store.save("a", a, now, 600 + i);
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(store.load_versioned("a", now, &data, &version));
      REQUIRE(store.save_if("a", "a", a, now, 600 + i, version) == Commit::written);
    }
    CHECK(sidecar_lines(sidecar).size() == 3);
    CHECK(listed(store, "user:42", now).size() == 3);
    CHECK(std::distance(fs::directory_iterator(dir.path() + "/" + FileStore::kPrincipalDir),
                        fs::directory_iterator()) == 2);
  }
  SECTION("lines that do not parse are dropped, not trusted") {
    std::ofstream(sidecar, std::ios::app) << "garbage\n12 ../escape\n99999999999 a\n";
    CHECK(listed(store, "user:42", now).size() == 3);
    CHECK(sidecar_lines(sidecar).size() == 3);
  }
}

TEST_CASE("file: two processes indexing one principal lose no entry", "[principals]") {
  TempDir dir;
  constexpr int kProcesses = 2, kSessions = 100;
  const int64_t now = int64_t(std::time(nullptr));
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // No Catch2 assertions in the child: the exit status is the result.
      int status = 0;
      try {
        FileStore store(dir.path(), {false, std::chrono::seconds(3600)});
        store.start();
        for (int i = 0; i < kSessions; ++i) {
          const std::string key = "p" + std::to_string(p) + "-" + std::to_string(i);
          // Half are moved in, as regenerate_id does.
          if (i % 2) store.save(key, principal_record("user:42", i), now, 600);
          else store.move(key + "-old", key, principal_record("user:42", i), now, 600);
        }
      } catch (...) {
        status = 1;
      }
      ::_exit(status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  FileStore store(dir.path(), {false, std::chrono::seconds(3600)});
  store.start();
  CHECK(listed(store, "user:42", now).size() == kProcesses * kSessions);
  CHECK(sidecar_lines(sidecar_path(dir.path(), "user:42")).size() == kProcesses * kSessions);
}

TEST_CASE("file: sessions that log in are listed and ended through the index", "[principals]") {
  TempDir dir;
  Fixture f("file://" + dir.path() + "?fsync=false", {}, false);
  // Logged in on a second request: the principal is set with a new ID (a
  // moved record), as applications do.
  auto log_in_as = [&](Browser& b, const std::string& principal) {
    REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("x", Value(1)); }) ==
            Errc::ok);
    REQUIRE(b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      s.set_principal(principal);
      s.regenerate_id();
    }) == Errc::ok);
  };
  Browser one, two, other;
  log_in_as(one, "user:42");
  log_in_as(two, "user:42");
  log_in_as(other, "user:7");
  CHECK(list_sessions(*f.store, "user:42").size() == 2);
  CHECK(list_sessions(*f.store, "user:7").size() == 1);
  CHECK(end_sessions(*f.store, "user:42", nullptr) == 2);
  for (Browser* b : {&one, &two})
    b->request([&](Request& r) {
      CHECK(r.session(f.store, "sid").status() == SESS_STATUS_UNKNOWN_ID);
    });
  CHECK(list_sessions(*f.store, "user:42").empty());
  other.request([&](Request& r) {
    CHECK(r.session(f.store, "sid").status() == SESS_STATUS_VALID);
  });
}
