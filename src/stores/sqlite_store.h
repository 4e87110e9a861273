// sqlite:///var/lib/app/sessions.db?table=sessions&busy_timeout_ms=5000&synchronous=full
//
// Sessions in one SQLite database file: the persistent store for a single
// machine. The database is in WAL mode, so readers never wait for the
// writer, and a busy timeout makes writers from several threads and
// processes queue instead of failing. Each thread leases its own connection
// (with its prepared statements) from a pool. Saves are upserts; loads
// ignore expired rows; a background thread deletes expired rows in bounded
// batches, each its own short transaction, so no request waits long for it.
// Each row has a version that every write increments; save_if is a
// conditional UPDATE (or DELETE and INSERT, for a moved ID) in one write
// transaction, so merge and cas are atomic across threads and processes.
// Each row also has a principal column (the record's record_principal(),
// NULL when none), written in the same statement as the data, with a
// partial index over the rows that have one: principal_records() is one
// SELECT on it, and expired rows leave it as the collector deletes them.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend.h"
#include "collector.h"
#include "options.h"
#include "pool.h"

namespace sessions::internal {

class SqliteStore : public Backend {
 public:
  static constexpr int kCollectBatch = 1000;  // rows per delete transaction

  struct Options {
    std::string path;
    std::string table = "sessions";
    std::chrono::milliseconds busy_timeout{5000};
    std::string synchronous = "FULL";  // FULL: a save survives power loss; NORMAL: a crash
    std::chrono::seconds gc_interval{300};
    size_t pool = 8;
  };

  // location: "///absolute/path.db"; consumes its options from *options.
  static std::unique_ptr<SqliteStore> open(const std::string& location, OptionList* options);
  explicit SqliteStore(Options options);
  ~SqliteStore() override;

  // Opens the database (created when missing), switches it to WAL, creates
  // the table and its indexes (or adds the version and principal columns to
  // a table of an earlier release), and starts the collector.
  void start() override;

  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;
  void move(std::string_view from, std::string_view to, std::string_view data, int64_t now,
            int64_t ttl) override;
  bool load_versioned(std::string_view key, int64_t now, std::string* data,
                      Version* version) override;
  Commit save_if(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                 int64_t ttl, Version expected) override;
  bool atomic_save_if() const override { return true; }

  bool indexes_principals() const override { return true; }
  void principal_records(std::string_view principal, int64_t now, KeyedRecords* out) override;

  // Deletes every row expired at `now`, in batches; returns how many.
  size_t collect(int64_t now);

 private:
  class Connection;
  using ConnectionPtr = std::unique_ptr<Connection>;
  class Call;

  ConnectionPtr connect() const;

  Options options_;
  Pool<ConnectionPtr> pool_;
  Collector collector_;  // last: stopped before the pool goes
};

}  // namespace sessions::internal
