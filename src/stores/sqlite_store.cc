#include "sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>

#include "error.h"
#include "builtin_stores.h"
#include "record.h"

namespace sessions::internal {
namespace {

// Resets a prepared statement when the call that used it ends, however it ends.
class Reset {
 public:
  explicit Reset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Reset(const Reset&) = delete;
  Reset& operator=(const Reset&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

}  // namespace

// One database connection with its prepared statements; used by one thread
// at a time (leased from the pool), hence opened with SQLITE_OPEN_NOMUTEX.
class SqliteStore::Connection {
 public:
  sqlite3* db = nullptr;
  sqlite3_stmt* load = nullptr;
  sqlite3_stmt* save = nullptr;
  sqlite3_stmt* erase = nullptr;
  sqlite3_stmt* update_if = nullptr;  // save_if, same ID
  sqlite3_stmt* erase_if = nullptr;   // save_if, moved ID
  sqlite3_stmt* probe = nullptr;      // a live row's version: changed or gone
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
  sqlite3_stmt* collect = nullptr;
  sqlite3_stmt* principal = nullptr;  // a principal's live rows

  explicit Connection(std::string path) : path_(std::move(path)) {}
  ~Connection() {
    for (sqlite3_stmt* stmt :
         {load, save, erase, update_if, erase_if, probe, begin, commit, rollback, collect, principal})
      sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A statement's failure as the store's error: too big is the caller's
  // value; anything else (locked past the busy timeout, I/O, a full disk, a
  // file that is not a database) is the store being unavailable.
  Error error(int rc, const char* what) const {
    std::string message = "sqlite " + path_ + ": " + what + ": " +
                          (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (rc == SQLITE_TOOBIG) return Error(Errc::value_too_large, message);
    if (rc == SQLITE_NOMEM) return Error(Errc::no_memory, message);
    return Error(Errc::store_unavailable, message);
  }
  [[noreturn]] void fail_with(int rc, const char* what) const { throw error(rc, what); }

  void exec(const std::string& sql, const char* what) const {
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail_with(rc, what);
  }

  sqlite3_stmt* prepare(const std::string& sql) const {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db, sql.c_str(), int(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) fail_with(rc, "prepare (does the table have another layout?)");
    return stmt;
  }

  // Steps a statement that returns no row; returns how many rows it changed.
  int run(sqlite3_stmt* stmt, const char* what) const {
    Reset reset(stmt);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) fail_with(rc, what);
    return sqlite3_changes(db);
  }

  // After a failure between BEGIN and COMMIT; nothing to undo if BEGIN itself
  // failed. Done before the connection is discarded, which finalizes the
  // statement.
  void roll_back() const {
    Reset reset(rollback);
    sqlite3_step(rollback);
  }

  // The column names of `table`, lowercased (SQLite's names are
  // case-insensitive); empty when there is no such table.
  std::set<std::string> columns(const std::string& table) const {
    sqlite3_stmt* stmt = prepare("SELECT name FROM pragma_table_info(?1)");
    std::set<std::string> names;
    sqlite3_bind_text(stmt, 1, table.data(), int(table.size()), SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::string name = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
      names.insert(std::move(name));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) fail_with(rc, "cannot read the table's layout");
    return names;
  }

  // Creates the table when missing, refuses one of another layout, and adds
  // the columns of later releases to a table of an earlier one: version
  // (save_if; its rows start at version 0) and principal (the principal
  // index; its rows have none, NULL). Looked at first, so that nothing is
  // done to a foreign table.
  void prepare_table(const std::string& t) const {
    const std::set<std::string> found = columns(t);
    for (const char* needed : {"id", "data", "expires_at"})
      if (!found.empty() && !found.count(needed))
        fail(Errc::store_unavailable, "sqlite " + path_ + ": table " + t +
                                          " has another layout (no column " + needed + ")");
    exec("CREATE TABLE IF NOT EXISTS " + t +
             " (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, expires_at INTEGER NOT NULL,"
             " version INTEGER NOT NULL DEFAULT 0, principal BLOB);"
             "CREATE INDEX IF NOT EXISTS " + t + "_expires_at ON " + t + " (expires_at)",
         "cannot create the table");
    if (!found.empty() && (!found.count("version") || !found.count("principal"))) {
      // Looked at again under the write lock: another connection or process
      // may have added them meanwhile.
      exec("BEGIN IMMEDIATE", "cannot add the new columns");
      try {
        const std::set<std::string> now_found = columns(t);
        if (!now_found.count("version"))
          exec("ALTER TABLE " + t + " ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
               "cannot add the version column");
        if (!now_found.count("principal"))
          exec("ALTER TABLE " + t + " ADD COLUMN principal BLOB", "cannot add the principal column");
        exec("COMMIT", "cannot add the new columns");
      } catch (...) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }
    // Partial: rows without a principal (NULL) are not in it, so their
    // writes cost no index update. principal = ?1 implies IS NOT NULL, so
    // the listing uses it.
    exec("CREATE INDEX IF NOT EXISTS " + t + "_principal ON " + t + " (principal) "
             "WHERE principal IS NOT NULL",
         "cannot create the principal index");
  }

 private:
  std::string path_;
};

// A connection leased for one call. After a failure the connection is
// dropped: a statement may be mid-transaction or the file replaced.
class SqliteStore::Call {
 public:
  explicit Call(SqliteStore* store)
      : lease_(store->pool_.acquire(store->options_.busy_timeout, "sqlite " + store->options_.path)) {
    if (!lease_.get()) lease_.set(store->connect());
  }
  Connection& operator*() { return *lease_.get(); }
  Connection* operator->() { return lease_.get().get(); }
  void discard() { lease_.discard(); }
  [[noreturn]] void fail(int rc, const char* what) {
    Error error = lease_.get()->error(rc, what);
    discard();
    throw error;
  }

 private:
  Pool<ConnectionPtr>::Lease lease_;
};

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& location, OptionList* list) {
  Options o;
  o.path = location.rfind("//", 0) == 0 ? location.substr(2) : location;
  if (o.path.empty() || o.path[0] != '/')
    fail(Errc::bad_uri, "sqlite: URI must name an absolute file: sqlite:///var/lib/app/sessions.db");
  if (o.path.find('\0') != std::string::npos) fail(Errc::bad_uri, "sqlite: path holds a NUL byte");
  if (auto v = take_option(list, "table")) o.table = safe_identifier("table", *v);
  take_milliseconds(list, "busy_timeout_ms", &o.busy_timeout);
  take_pool_size(list, &o.pool);
  if (auto v = take_option(list, "synchronous")) {
    std::string upper;
    for (char c : *v) upper.push_back(char(std::toupper(static_cast<unsigned char>(c))));
    if (upper != "FULL" && upper != "NORMAL" && upper != "EXTRA")
      fail(Errc::bad_option, "option synchronous: '" + *v + "' is not full, normal or extra");
    o.synchronous = upper;
  }
  take_interval(list, "gc_interval", &o.gc_interval);
  return std::make_unique<SqliteStore>(std::move(o));
}

SqliteStore::SqliteStore(Options options) : options_(std::move(options)), pool_(options_.pool) {}

SqliteStore::~SqliteStore() { collector_.stop(); }

SqliteStore::ConnectionPtr SqliteStore::connect() const {
  auto c = std::make_unique<Connection>(options_.path);
  int rc = sqlite3_open_v2(options_.path.c_str(), &c->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) c->fail_with(rc, "cannot open");
  sqlite3_extended_result_codes(c->db, 0);
  sqlite3_busy_timeout(c->db, int(options_.busy_timeout.count()));
  // WAL is a property of the file (set once, kept); synchronous is per connection.
  c->exec("PRAGMA journal_mode=WAL", "cannot switch to WAL");
  c->exec("PRAGMA synchronous=" + options_.synchronous, "cannot set synchronous");
  const std::string& t = options_.table;  // a safe identifier: checked at open
  c->prepare_table(t);
  c->load = c->prepare("SELECT data, version FROM " + t + " WHERE id = ?1 AND expires_at > ?2");
  // Every write gives the row a new version. IDs are never reused, so a new
  // row may start at 0.
  // The principal (NULL: none) is written with the data it comes from.
  c->save = c->prepare("INSERT INTO " + t + " (id, data, expires_at, version, principal) "
                       "VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT (id) DO UPDATE SET "
                       "data = excluded.data, expires_at = excluded.expires_at, "
                       "version = version + 1, principal = excluded.principal");
  c->erase = c->prepare("DELETE FROM " + t + " WHERE id = ?1");
  c->update_if = c->prepare("UPDATE " + t + " SET data = ?2, expires_at = ?3, "
                            "version = version + 1, principal = ?6 "
                            "WHERE id = ?1 AND version = ?4 AND expires_at > ?5");
  c->erase_if =
      c->prepare("DELETE FROM " + t + " WHERE id = ?1 AND version = ?2 AND expires_at > ?3");
  c->probe = c->prepare("SELECT version FROM " + t + " WHERE id = ?1 AND expires_at > ?2");
  c->begin = c->prepare("BEGIN IMMEDIATE");
  c->commit = c->prepare("COMMIT");
  c->rollback = c->prepare("ROLLBACK");
  c->collect = c->prepare("DELETE FROM " + t + " WHERE rowid IN (SELECT rowid FROM " + t +
                          " WHERE expires_at <= ?1 LIMIT ?2)");
  c->principal =
      c->prepare("SELECT id, data FROM " + t + " WHERE principal = ?1 AND expires_at > ?2");
  return c;
}

void SqliteStore::start() {
  Call call(this);  // opens, creates the table, prepares: errors surface at open
  collector_.start(options_.gc_interval, [this] { collect(int64_t(std::time(nullptr))); });
}

bool SqliteStore::load(std::string_view key, int64_t now, std::string* data) {
  Version ignored;
  return load_versioned(key, now, data, &ignored);
}

bool SqliteStore::load_versioned(std::string_view key, int64_t now, std::string* data,
                                 Version* version) {
  Call call(this);
  int rc;
  {
    // Reset before a failure discards the connection, which finalizes it.
    sqlite3_stmt* stmt = call->load;
    Reset reset(stmt);
    sqlite3_bind_text(stmt, 1, key.data(), int(key.size()), SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      // Whatever type the column holds, its bytes: a foreign row decodes as malformed.
      const void* bytes = sqlite3_column_blob(stmt, 0);
      data->assign(bytes ? static_cast<const char*>(bytes) : "",
                   size_t(sqlite3_column_bytes(stmt, 0)));
      *version = Version(sqlite3_column_int64(stmt, 1));
      return true;
    }
  }
  if (rc != SQLITE_DONE) call.fail(rc, "load");
  return false;
}

namespace {

// The record's principal as parameter `n`: its bytes (a blob, as every
// principal is bound, so that equal ones compare equal), or NULL for none.
void bind_principal(sqlite3_stmt* stmt, int n, std::string_view data) {
  const std::string_view principal = record_principal(data);
  if (principal.empty()) sqlite3_bind_null(stmt, n);
  else sqlite3_bind_blob(stmt, n, principal.data(), int(principal.size()), SQLITE_STATIC);
}

void bind_save(sqlite3_stmt* stmt, std::string_view key, std::string_view data, int64_t expires) {
  sqlite3_bind_text(stmt, 1, key.data(), int(key.size()), SQLITE_STATIC);
  sqlite3_bind_blob(stmt, 2, data.data(), int(data.size()), SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, expires);
  bind_principal(stmt, 4, data);
}

// A column's bytes, whatever type it holds.
std::string column_bytes(sqlite3_stmt* stmt, int column) {
  const void* bytes = sqlite3_column_blob(stmt, column);
  return std::string(bytes ? static_cast<const char*>(bytes) : "",
                     size_t(sqlite3_column_bytes(stmt, column)));
}

}  // namespace

void SqliteStore::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  Call call(this);
  bind_save(call->save, key, data, now + std::max<int64_t>(ttl, 1));
  try {
    call->run(call->save, "save");
  } catch (...) {
    call.discard();
    throw;
  }
}

void SqliteStore::erase(std::string_view key) {
  Call call(this);
  sqlite3_bind_text(call->erase, 1, key.data(), int(key.size()), SQLITE_STATIC);
  try {
    call->run(call->erase, "erase");
  } catch (...) {
    call.discard();
    throw;
  }
}

void SqliteStore::move(std::string_view from, std::string_view to, std::string_view data,
                       int64_t now, int64_t ttl) {
  Call call(this);
  try {
    call->run(call->begin, "begin");
    bind_save(call->save, to, data, now + std::max<int64_t>(ttl, 1));
    call->run(call->save, "save");
    sqlite3_bind_text(call->erase, 1, from.data(), int(from.size()), SQLITE_STATIC);
    call->run(call->erase, "erase");
    call->run(call->commit, "commit");
  } catch (...) {
    call->roll_back();
    call.discard();
    throw;
  }
}

Commit SqliteStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                            int64_t now, int64_t ttl, Version expected) {
  const int64_t expires = now + std::max<int64_t>(ttl, 1);
  Call call(this);
  // One write transaction: the conditional write and, when it matched
  // nothing, the look at why, so that no other writer comes in between.
  try {
    call->run(call->begin, "begin");
    bool written;
    if (from == to) {
      sqlite3_stmt* stmt = call->update_if;
      sqlite3_bind_text(stmt, 1, from.data(), int(from.size()), SQLITE_STATIC);
      sqlite3_bind_blob(stmt, 2, data.data(), int(data.size()), SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 3, expires);
      sqlite3_bind_int64(stmt, 4, int64_t(expected));
      sqlite3_bind_int64(stmt, 5, now);
      bind_principal(stmt, 6, data);
      written = call->run(stmt, "save_if") == 1;
    } else {
      // regenerate_id: the new row is inserted only if the old one was
      // deleted at the expected version, in the same transaction.
      sqlite3_stmt* stmt = call->erase_if;
      sqlite3_bind_text(stmt, 1, from.data(), int(from.size()), SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 2, int64_t(expected));
      sqlite3_bind_int64(stmt, 3, now);
      written = call->run(stmt, "save_if") == 1;
      if (written) {
        bind_save(call->save, to, data, expires);
        call->run(call->save, "save_if");
      }
    }
    bool live = false;
    if (!written) {
      sqlite3_stmt* probe = call->probe;
      Reset reset(probe);
      sqlite3_bind_text(probe, 1, from.data(), int(from.size()), SQLITE_STATIC);
      sqlite3_bind_int64(probe, 2, now);
      const int rc = sqlite3_step(probe);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) call->fail_with(rc, "save_if");
      live = rc == SQLITE_ROW;
    }
    call->run(call->commit, "commit");  // nothing to write when it matched nothing
    return written ? Commit::written : live ? Commit::changed : Commit::gone;
  } catch (...) {
    call->roll_back();
    call.discard();
    throw;
  }
}

size_t SqliteStore::collect(int64_t now) {
  Call call(this);
  size_t removed = 0;
  while (true) {
    sqlite3_stmt* stmt = call->collect;
    sqlite3_bind_int64(stmt, 1, now);
    sqlite3_bind_int(stmt, 2, kCollectBatch);
    const int batch = call->run(stmt, "collect");
    removed += size_t(batch);
    if (batch < kCollectBatch) return removed;
  }
}

void SqliteStore::principal_records(std::string_view principal, int64_t now, KeyedRecords* out) {
  Call call(this);
  int rc;
  {
    // Reset before a failure discards the connection, which finalizes it.
    sqlite3_stmt* stmt = call->principal;
    Reset reset(stmt);
    sqlite3_bind_blob(stmt, 1, principal.data(), int(principal.size()), SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
      out->emplace_back(column_bytes(stmt, 0), column_bytes(stmt, 1));
  }
  if (rc != SQLITE_DONE) call.fail(rc, "principal_records");
}

Scheme sqlite_scheme() {
  return {{"sqlite"}, {"table", "pool", "busy_timeout_ms", "synchronous", "gc_interval"}, nullptr,
          [](const OpenRequest& r) { return SqliteStore::open(r.uri.rest, r.options); }};
}

}  // namespace sessions::internal
