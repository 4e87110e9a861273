#include "sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "error.h"
#include "builtin_stores.h"

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
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
  sqlite3_stmt* collect = nullptr;

  explicit Connection(std::string path) : path_(std::move(path)) {}
  ~Connection() {
    for (sqlite3_stmt* stmt : {load, save, erase, begin, commit, rollback, collect})
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

  // Steps a statement that returns no row.
  void run(sqlite3_stmt* stmt, const char* what) const {
    Reset reset(stmt);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) fail_with(rc, what);
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
  c->exec("CREATE TABLE IF NOT EXISTS " + t +
              " (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, expires_at INTEGER NOT NULL);"
              "CREATE INDEX IF NOT EXISTS " + t + "_expires_at ON " + t + " (expires_at)",
          "cannot create the table");
  c->load = c->prepare("SELECT data FROM " + t + " WHERE id = ?1 AND expires_at > ?2");
  c->save = c->prepare("INSERT INTO " + t + " (id, data, expires_at) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
                       "expires_at = excluded.expires_at");
  c->erase = c->prepare("DELETE FROM " + t + " WHERE id = ?1");
  c->begin = c->prepare("BEGIN IMMEDIATE");
  c->commit = c->prepare("COMMIT");
  c->rollback = c->prepare("ROLLBACK");
  c->collect = c->prepare("DELETE FROM " + t + " WHERE rowid IN (SELECT rowid FROM " + t +
                          " WHERE expires_at <= ?1 LIMIT ?2)");
  return c;
}

void SqliteStore::start() {
  Call call(this);  // opens, creates the table, prepares: errors surface at open
  collector_.start(options_.gc_interval, [this] { collect(int64_t(std::time(nullptr))); });
}

bool SqliteStore::load(std::string_view key, int64_t now, std::string* data) {
  Call call(this);
  sqlite3_stmt* stmt = call->load;
  Reset reset(stmt);
  sqlite3_bind_text(stmt, 1, key.data(), int(key.size()), SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, now);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) call.fail(rc, "load");
  // Whatever type the column holds, its bytes: a foreign row decodes as malformed.
  const void* bytes = sqlite3_column_blob(stmt, 0);
  data->assign(bytes ? static_cast<const char*>(bytes) : "", size_t(sqlite3_column_bytes(stmt, 0)));
  return true;
}

namespace {

void bind_save(sqlite3_stmt* stmt, std::string_view key, std::string_view data, int64_t expires) {
  sqlite3_bind_text(stmt, 1, key.data(), int(key.size()), SQLITE_STATIC);
  sqlite3_bind_blob(stmt, 2, data.data(), int(data.size()), SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, expires);
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
    Reset reset(call->rollback);
    sqlite3_step(call->rollback);  // nothing to undo if BEGIN itself failed
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
    call->run(stmt, "collect");
    const int batch = sqlite3_changes(call->db);
    removed += size_t(batch);
    if (batch < kCollectBatch) return removed;
  }
}

Scheme sqlite_scheme() {
  return {{"sqlite"}, {"table", "pool", "busy_timeout_ms", "synchronous", "gc_interval"}, nullptr,
          [](const OpenRequest& r) { return SqliteStore::open(r.uri.rest, r.options); }};
}

}  // namespace sessions::internal
