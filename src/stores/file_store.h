// file:///var/lib/app/sessions?fsync=true&gc_interval=5m -- one file per
// session in a directory.
//
// Each save writes a temporary file (mode 0600) and renames it over the
// session's file, so a reader or a crash sees the old record or the new one,
// never half of one. The file's modification time is the record's expiry:
// loads ignore files past it, and a background thread (one per store)
// removes them, so no request waits for the collection. Several processes
// may share the directory: names of temporary files are random, renames are
// atomic, and collectors tolerate each other.
//
// Writers of one session take turns, across threads and processes, under an
// flock(2) on one of kLockStripes lock files in <dir>/.locks, chosen by a
// hash of the key: save_if checks the record and renames its new file over
// it under that lock, so concurrency=merge and cas are atomic; save, erase
// and a moved ID take the same locks. Only the check and the rename are
// under it: the new file is written and synced before.
//
// Principals: <dir>/.principals/<base64url of SHA-256 of the principal>, a
// sidecar made only for records that have one, lists its records, one line
// each: "<expiry> <key>\n" (expiry in Unix seconds, like a record's mtime;
// the sidecar's own mtime is the latest of them). It is changed under an
// flock(2) on the sidecar itself and replaced by a rename: a locker checks,
// once locked, that the file it locked is still the one at the path, and
// starts again if not, so writers of one principal in any process take turns
// and none loses another's lines. A save of a record with a principal takes
// the sidecar's lock under its stripe locks (never the other way round),
// writes the sidecar's new file, renames the record into place and only then
// the sidecar: a listing, which reads under the lock of the sidecar at the
// path, never finds a line whose record is still being written. Each rewrite drops
// lines expired or whose file is gone, and a moved record's old key;
// listing also drops lines whose record has another principal since. An
// empty sidecar is removed, and the collector removes sidecars expired.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend.h"
#include "collector.h"
#include "options.h"

namespace sessions::internal {

class FileStore : public Backend {
 public:
  // A file is collected this long after its expiry, so that a request that
  // loaded the session just before it expired can still save it.
  static constexpr int64_t kCollectGrace = 60;
  // Temporary files older than this were left by a crash.
  static constexpr int64_t kAbandonedTempAge = 3600;
  // Lock files in <dir>/.locks, however many sessions there are: two
  // sessions share one with probability 1/64, and then only take turns.
  static constexpr size_t kLockStripes = 64;
  static constexpr const char* kLockDir = ".locks";
  static constexpr const char* kPrincipalDir = ".principals";  // made when first needed

  struct Options {
    bool fsync = true;                       // fsync file and directory before a save returns
    std::chrono::seconds gc_interval{300};   // how often the collector runs
  };

  // location: "///absolute/dir". Touches no file: start() does.
  static std::unique_ptr<FileStore> open(const std::string& location, OptionList* options);
  FileStore(std::string dir, Options options);
  ~FileStore() override;

  // Creates the directory (mode 0700) when missing, checks that it is
  // writable, creates the lock files, and starts the collector thread.
  void start() override;

  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;
  void move(std::string_view from, std::string_view to, std::string_view data, int64_t now,
            int64_t ttl) override;
  // The version is the default, content_version() of the file's bytes: see
  // commit() in the .cc for why that is the right one here.
  Commit save_if(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                 int64_t ttl, Version expected) override;
  bool atomic_save_if() const override { return true; }

  bool indexes_principals() const override { return true; }
  void principal_records(std::string_view principal, int64_t now, KeyedRecords* out) override;

  // One collection pass as of `now` (real time in the background thread).
  // Returns how many files it removed.
  size_t collect(int64_t now);

 private:
  class StripeLocks;
  class Sidecar;
  std::string path_for(std::string_view key) const;
  // Writes data into a new temporary file for `name`, with its expiry and
  // synced; returns the temporary file's name.
  std::string write_temp(const std::string& name, std::string_view data, int64_t now,
                         int64_t ttl);
  // Writes data under `to` and removes `from` if it differs, the rename and
  // the removal under both keys' locks; with `expected`, only if `from` is
  // still at that version, and otherwise nothing.
  Commit commit(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                int64_t ttl, const Version* expected);
  // The sidecar's lines after `to` is written (and `from` removed).
  void index(Sidecar* sidecar, const std::string& from, const std::string& to, int64_t expires,
             int64_t now, std::string* pending);
  size_t collect_sidecars(int64_t now);

  std::string dir_;
  Options options_;
  int dir_fd_ = -1;  // for fsync of renames
  int locks_fd_ = -1;  // <dir>/.locks
  Collector collector_;  // last: stopped before the rest is destroyed
};

}  // namespace sessions::internal
