// The file: store in a temporary directory.
#include <catch2/catch.hpp>
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
#include "harness.h"
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
