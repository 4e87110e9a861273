// postgresql://user:password@host:5432/db?table=sessions&pool=16&timeout_ms=5000
// (also postgres://; every libpq URI parameter, such as sslmode or
// application_name, may be given in the query too).
//
// One row per session: id text primary key, data bytea, expires_at
// timestamptz with an index, a version that every write increments, and
// principal bytea (the record's record_principal(), NULL when none), set by
// the same statement that writes the data, with a partial index over the
// rows that have one (principal_records() is one SELECT on it; expired rows
// leave it as the collector deletes them). The table is created at open
// when missing (and the version and principal columns added to a table of
// an earlier release). Saves are upserts (INSERT ... ON
// CONFLICT), regenerate_id one statement that deletes and inserts, loads
// ignore expired rows, and a background thread deletes expired rows in
// bounded batches, so no request waits for it. save_if is one statement: an
// UPDATE (or, for a moved ID, a DELETE and an INSERT) conditional on the
// version, so merge and cas are atomic across every client of the table.
// libpq connections are not thread-safe: each call leases one, with its
// prepared statements, from a pool. A connection the server closed is
// replaced and the statement sent once more (all of them are idempotent,
// save_if up to answering changed for its own write), so a restarted server
// is picked up without reopening the store. Every call is bounded by
// timeout_ms, also against a server that hangs.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "collector.h"
#include "options.h"
#include "pool.h"

namespace sessions::internal {

class PostgresStore : public Backend {
 public:
  static constexpr int kCollectBatch = 1000;  // rows per delete statement

  struct Options {
    // libpq connection parameters (keyword, value), from the URI.
    std::vector<std::pair<std::string, std::string>> params;
    std::string table = "sessions";
    size_t pool = 16;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds timeout{5000};
    std::chrono::seconds gc_interval{300};
  };

  // encoded_uri: the whole URI as given; consumes its options (and every
  // libpq parameter) from *options.
  static std::unique_ptr<PostgresStore> open(std::string_view encoded_uri, OptionList* options);
  explicit PostgresStore(Options options);
  ~PostgresStore() override;

  // Connects, creates the table and indexes when missing (refuses one of
  // another layout, adds the version and principal columns to one of an
  // earlier release), starts the collector.
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

  ConnectionPtr dial() const;     // connected and configured
  ConnectionPtr connect() const;  // and its statements prepared

  Options options_;
  std::string name_;  // "postgresql host:port/db" for messages
  Pool<ConnectionPtr> pool_;
  Collector collector_;  // last: stopped before the pool goes
};

}  // namespace sessions::internal
