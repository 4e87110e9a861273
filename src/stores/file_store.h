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

  struct Options {
    bool fsync = true;                       // fsync file and directory before a save returns
    std::chrono::seconds gc_interval{300};   // how often the collector runs
  };

  // location: "///absolute/dir". Touches no file: start() does.
  static std::unique_ptr<FileStore> open(const std::string& location, OptionList* options);
  FileStore(std::string dir, Options options);
  ~FileStore() override;

  // Creates the directory (mode 0700) when missing, checks that it is
  // writable, and starts the collector thread.
  void start() override;

  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;

  // One collection pass as of `now` (real time in the background thread).
  // Returns how many files it removed.
  size_t collect(int64_t now);

 private:
  std::string path_for(std::string_view key) const;

  std::string dir_;
  Options options_;
  int dir_fd_ = -1;  // for fsync of renames
  Collector collector_;  // last: stopped before the rest is destroyed
};

}  // namespace sessions::internal
