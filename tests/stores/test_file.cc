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

#include "contract.h"
#include "file_store.h"
#include "harness.h"
#include "servers.h"

using namespace sessions::internal;
using namespace sessions::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  return names;
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
