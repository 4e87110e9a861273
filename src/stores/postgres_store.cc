#include "postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <optional>
#include <set>

#include "error.h"
#include "builtin_stores.h"
#include "record.h"

namespace sessions::internal {
namespace {

using Clock = std::chrono::steady_clock;

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultFree>;

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Waits until the connection's socket is ready, or the deadline passes.
bool wait_socket(PGconn* conn, bool for_write, Clock::time_point deadline) {
  const int fd = PQsocket(conn);
  if (fd < 0) return false;
  pollfd p{fd, short(for_write ? POLLOUT : POLLIN), 0};
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    int rc = ::poll(&p, 1, int(left.count()));
    if (rc > 0) return true;
    if (rc == 0 || errno != EINTR) return false;
  }
}

std::string time_text(int64_t t) { return std::to_string(t); }

// Which parameters of a prepared statement are sent in binary (bytea) form.
constexpr unsigned binary(int n) { return 1u << n; }

// The principal parameter of a write: the record's principal, or NULL
// (no value) for none.
std::optional<std::string_view> principal_of(std::string_view data) {
  const std::string_view principal = record_principal(data);
  if (principal.empty()) return std::nullopt;
  return principal;
}

}  // namespace

// One libpq connection, non-blocking, with the store's prepared statements.
// Used by one thread at a time (leased from the pool).
class PostgresStore::Connection {
 public:
  Connection(PGconn* conn, std::string name) : conn_(conn), name_(std::move(name)) {}
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Closed by the server (a restart, a terminated backend): worth one retry
  // on a new connection. A timeout is not: the server is slow, not gone.
  bool closed_by_server() const { return !timed_out_ && PQstatus(conn_) != CONNECTION_OK; }
  bool usable() const { return !timed_out_ && PQstatus(conn_) == CONNECTION_OK; }

  template <typename Send>
  Result run(Send&& send, std::chrono::milliseconds timeout, const char* what) {
    const auto deadline = Clock::now() + timeout;
    if (!send(conn_)) fail_connection(what);
    int flushed;
    while ((flushed = PQflush(conn_)) == 1)
      if (!wait_socket(conn_, true, deadline)) fail_timeout(what, timeout);
    if (flushed < 0) fail_connection(what);
    Result outcome;
    while (true) {
      while (PQisBusy(conn_)) {
        if (!wait_socket(conn_, false, deadline)) fail_timeout(what, timeout);
        if (!PQconsumeInput(conn_)) fail_connection(what);
      }
      Result r(PQgetResult(conn_));
      if (!r) break;
      // Keep the first error, else the last result.
      if (!outcome || !failed(outcome.get())) outcome = std::move(r);
    }
    if (!outcome) fail_connection(what);
    if (failed(outcome.get())) {
      const char* state = PQresultErrorField(outcome.get(), PG_DIAG_SQLSTATE);
      const std::string code = state ? state : "";
      std::string message = name_ + ": " + what + ": " + trimmed(PQresultErrorMessage(outcome.get()));
      // Class 54 (program limit exceeded): a value over what the server takes.
      if (code.rfind("54", 0) == 0) fail(Errc::value_too_large, message);
      last_sqlstate_ = code;
      if (PQstatus(conn_) != CONNECTION_OK) fail_connection(what);
      fail(Errc::store_unavailable, message);
    }
    last_sqlstate_.clear();
    return outcome;
  }

  Result exec(const std::string& sql, std::chrono::milliseconds timeout, const char* what) {
    return run([&](PGconn* c) { return PQsendQuery(c, sql.c_str()) == 1; }, timeout, what);
  }

  static constexpr size_t kMaxParams = 8;  // the most any statement of this store takes

  // params: an empty optional is NULL; binary_params: binary(n) | ... for
  // each parameter n sent as raw bytes (bytea), the others are text.
  Result prepared(const char* statement,
                  std::initializer_list<std::optional<std::string_view>> params,
                  unsigned binary_params, std::chrono::milliseconds timeout,
                  bool binary_result = false) {
    const char* values[kMaxParams];
    int lengths[kMaxParams], formats[kMaxParams];
    if (params.size() > kMaxParams) fail(Errc::internal, name_ + ": too many parameters");
    int n = 0;
    for (const std::optional<std::string_view>& p : params) {
      values[n] = p ? p->data() : nullptr;
      lengths[n] = p ? int(p->size()) : 0;
      formats[n] = binary_params & binary(n) ? 1 : 0;
      ++n;
    }
    return run(
        [&](PGconn* c) {
          return PQsendQueryPrepared(c, statement, n, values, lengths, formats,
                                     binary_result ? 1 : 0) == 1;
        },
        timeout, statement);
  }

  void prepare(const char* statement, const std::string& sql, std::chrono::milliseconds timeout) {
    run([&](PGconn* c) { return PQsendPrepare(c, statement, sql.c_str(), 0, nullptr) == 1; },
        timeout, "prepare (does the table have another layout?)");
  }

  const std::string& last_sqlstate() const { return last_sqlstate_; }

 private:
  static bool failed(const PGresult* r) {
    auto status = PQresultStatus(r);
    return status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
  }
  [[noreturn]] void fail_connection(const char* what) const {
    fail(Errc::store_unavailable, name_ + ": " + what + ": " + trimmed(PQerrorMessage(conn_)));
  }
  [[noreturn]] void fail_timeout(const char* what, std::chrono::milliseconds timeout) {
    timed_out_ = true;  // the connection is mid-statement: never reused
    fail(Errc::store_unavailable, name_ + ": " + what + ": no answer within " +
                                      std::to_string(timeout.count()) + " ms");
  }

  PGconn* conn_;
  std::string name_;
  bool timed_out_ = false;
  std::string last_sqlstate_;
};

// A connection leased for one call; see the header for the retry rule.
class PostgresStore::Call {
 public:
  explicit Call(PostgresStore* store)
      : store_(store), lease_(store->pool_.acquire(store->options_.timeout, store->name_)) {}

  template <typename Fn>
  auto run(Fn&& fn) {
    bool reused = bool(lease_.get());
    for (int attempt = 0;; ++attempt) {
      if (!lease_.get()) lease_.set(store_->connect());
      Connection& c = *lease_.get();
      try {
        return fn(c);
      } catch (const Error&) {
        const bool retry = reused && attempt == 0 && c.closed_by_server();
        if (!c.usable()) lease_.discard();
        if (!retry) throw;
        reused = false;
      }
    }
  }

 private:
  PostgresStore* store_;
  Pool<ConnectionPtr>::Lease lease_;
};

std::unique_ptr<PostgresStore> PostgresStore::open(std::string_view encoded_uri, OptionList* list) {
  Options o;
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(std::string(encoded_uri).c_str(), &error);
  if (!parsed) {
    std::string why = trimmed(error);
    PQfreemem(error);
    fail(Errc::bad_uri, "postgresql: URI: " + why);
  }
  for (PQconninfoOption* p = parsed; p->keyword; ++p)
    if (p->val) o.params.emplace_back(p->keyword, p->val);
  PQconninfoFree(parsed);
  // libpq checks ports only when it connects: a bad one is the URI's error.
  for (const auto& [keyword, value] : o.params) {
    if (keyword != "port") continue;
    std::string_view ports = value;
    while (true) {
      std::string_view port = ports.substr(0, ports.find(','));
      int n = 0;
      auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
      if (!port.empty() && (ec != std::errc() || end != port.data() + port.size() || n < 1 ||
                            n > 65535))
        fail(Errc::bad_uri, "postgresql: URI has an invalid port '" + std::string(port) + "'");
      if (port.size() == ports.size()) break;
      ports.remove_prefix(port.size() + 1);
    }
  }
  // Any libpq parameter may also come in the query (sslmode=require, ...).
  if (PQconninfoOption* defaults = PQconndefaults()) {
    for (PQconninfoOption* p = defaults; p->keyword; ++p)
      if (auto v = take_option(list, p->keyword)) o.params.emplace_back(p->keyword, *v);
    PQconninfoFree(defaults);
  }
  if (auto v = take_option(list, "table")) o.table = safe_identifier("table", *v);
  take_pool_size(list, &o.pool);
  take_milliseconds(list, "connect_timeout_ms", &o.connect_timeout);
  take_milliseconds(list, "timeout_ms", &o.timeout);
  take_interval(list, "gc_interval", &o.gc_interval);
  return std::make_unique<PostgresStore>(std::move(o));
}

PostgresStore::PostgresStore(Options options) : options_(std::move(options)), pool_(options_.pool) {
  auto param = [&](const char* keyword, const char* fallback) {
    for (const auto& [k, v] : options_.params)
      if (k == keyword) return v;
    return std::string(fallback);
  };
  name_ = "postgresql " + param("host", "localhost") + ":" + param("port", "5432") + "/" +
          param("dbname", "");
}

PostgresStore::~PostgresStore() { collector_.stop(); }

PostgresStore::ConnectionPtr PostgresStore::dial() const {
  std::vector<const char*> keywords, values;
  for (const auto& [k, v] : options_.params) {
    keywords.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* raw = PQconnectStartParams(keywords.data(), values.data(), 0);
  if (!raw) fail(Errc::no_memory, name_ + ": out of memory");
  auto c = std::make_unique<Connection>(raw, name_);
  auto refuse = [&](const std::string& why) {
    fail(Errc::store_unavailable, name_ + ": cannot connect: " + why);
  };
  if (PQstatus(raw) == CONNECTION_BAD) refuse(trimmed(PQerrorMessage(raw)));
  const auto deadline = Clock::now() + options_.connect_timeout;
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) refuse(trimmed(PQerrorMessage(raw)));
    if (!wait_socket(raw, state == PGRES_POLLING_WRITING, deadline))
      refuse("no answer within " + std::to_string(options_.connect_timeout.count()) + " ms");
    state = PQconnectPoll(raw);
  }
  if (PQsetnonblocking(raw, 1) != 0) refuse(trimmed(PQerrorMessage(raw)));
  // The server gives up on a statement when the client does.
  c->exec("SET statement_timeout = " + std::to_string(options_.timeout.count()), options_.timeout,
          "configure");
  return c;
}

PostgresStore::ConnectionPtr PostgresStore::connect() const {
  ConnectionPtr c = dial();
  const auto timeout = options_.timeout;
  const std::string& t = options_.table;  // a safe identifier: checked at open
  // Every write gives the row a new version. IDs are never reused, so a new
  // row may start at 0.
  // Every write sets the principal (NULL: none) from the data it writes.
  const std::string on_conflict = " ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, "
                                  "expires_at = EXCLUDED.expires_at, "
                                  "version = " + t + ".version + 1, "
                                  "principal = EXCLUDED.principal";
  const std::string upsert = "INSERT INTO " + t + " (id, data, expires_at, version, principal) "
                             "VALUES ($1, $2::bytea, to_timestamp($3::float8), 0, $4::bytea)" +
                             on_conflict;
  c->prepare("load", "SELECT data, version FROM " + t +
                         " WHERE id = $1 AND expires_at > to_timestamp($2::float8)",
             timeout);
  c->prepare("save", upsert, timeout);
  c->prepare("erase", "DELETE FROM " + t + " WHERE id = $1", timeout);
  // One statement: every reader sees the session under exactly one ID.
  c->prepare("move", "WITH gone AS (DELETE FROM " + t + " WHERE id = $5) " + upsert, timeout);
  // save_if, one statement each: the write only if the row is live at the
  // expected version (an UPDATE waiting on a concurrent writer's row lock
  // checks its WHERE again on the row that writer committed), and whether the
  // row was live in the statement's snapshot, which tells changed from gone.
  const std::string live_then = "EXISTS (SELECT FROM " + t +
                                " WHERE id = $1 AND expires_at > to_timestamp($4::float8))";
  c->prepare("save_if",
             "WITH written AS (UPDATE " + t + " SET data = $2::bytea, "
             "expires_at = to_timestamp($3::float8), version = version + 1, "
             "principal = $6::bytea "
             "WHERE id = $1 AND version = $5::bigint AND expires_at > to_timestamp($4::float8) "
             "RETURNING 1) "
             "SELECT EXISTS (SELECT FROM written), " + live_then,
             timeout);
  // A moved ID: the new row is inserted only if the old one was deleted at
  // the expected version, in the same statement, so every reader sees the
  // session under exactly one of the IDs.
  c->prepare("move_if",
             "WITH gone AS (DELETE FROM " + t + " WHERE id = $1 AND version = $5::bigint "
             "AND expires_at > to_timestamp($4::float8) RETURNING 1), "
             "written AS (INSERT INTO " + t + " (id, data, expires_at, version, principal) "
             "SELECT $6::text, $2::bytea, to_timestamp($3::float8), 0, $7::bytea FROM gone" +
             on_conflict +
             " RETURNING 1) "
             "SELECT EXISTS (SELECT FROM written), " + live_then,
             timeout);
  c->prepare("collect", "DELETE FROM " + t + " WHERE ctid IN (SELECT ctid FROM " + t +
                            " WHERE expires_at <= to_timestamp($1::float8) LIMIT " +
                            std::to_string(kCollectBatch) + ")",
             timeout);
  c->prepare("principal", "SELECT id, data FROM " + t + " WHERE principal = $1::bytea "
                          "AND expires_at > to_timestamp($2::float8)",
             timeout);
  return c;
}

void PostgresStore::start() {
  const std::string& t = options_.table;
  const std::string create =
      "CREATE TABLE IF NOT EXISTS " + t +
      " (id text PRIMARY KEY, data bytea NOT NULL, expires_at timestamptz NOT NULL,"
      " version bigint NOT NULL DEFAULT 0, principal bytea);"
      "CREATE INDEX IF NOT EXISTS " + t + "_expires_at_idx ON " + t + " (expires_at)";
  // Partial: rows without a principal (NULL) are not in it, so their writes
  // cost no index update; principal = $1 implies IS NOT NULL, so the
  // listing uses it.
  const std::string index_principal = "CREATE INDEX IF NOT EXISTS " + t + "_principal_idx ON " +
                                      t + " (principal) WHERE principal IS NOT NULL";
  // A connection of its own: the pool's connections prepare statements
  // against the table, which may not exist yet.
  ConnectionPtr setup = dial();
  // The table's columns as they are, looked at before anything is done to
  // it: none when it does not exist (the name is unquoted in every
  // statement, so it resolves, and folds to lower case, as there).
  Result layout = setup->exec("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('" +
                                  t + "') AND attnum > 0 AND NOT attisdropped",
                              options_.timeout, "read the table's layout");
  std::set<std::string> columns;
  for (int i = 0; i < PQntuples(layout.get()); ++i) columns.insert(PQgetvalue(layout.get(), i, 0));
  for (const char* needed : {"id", "data", "expires_at"})
    if (!columns.empty() && !columns.count(needed))
      fail(Errc::store_unavailable,
           name_ + ": table " + t + " has another layout (no column " + needed + ")");
  auto create_once = [&](const std::string& sql, const char* what) {
    for (int attempt = 0;; ++attempt) {
      try {
        setup->exec(sql, options_.timeout, what);
        return;
      } catch (const Error&) {
        // Two processes creating it at once: one loses the race on the
        // catalog's unique index; it is there now.
        const std::string& state = setup->last_sqlstate();
        if (attempt > 0 || (state != "23505" && state != "42P07")) throw;
      }
    }
  };
  create_once(create, "create table");
  // A table of an earlier release: its rows start at version 0, and with no
  // principal (NULL). IF NOT EXISTS, for another process migrating it at
  // the same time.
  if (!columns.empty() && !columns.count("version"))
    setup->exec("ALTER TABLE " + t + " ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0",
                options_.timeout, "add the version column");
  if (!columns.empty() && !columns.count("principal"))
    setup->exec("ALTER TABLE " + t + " ADD COLUMN IF NOT EXISTS principal bytea",
                options_.timeout, "add the principal column");
  create_once(index_principal, "create the principal index");
  Call call(this);
  call.run([](Connection&) { return 0; });  // the pool's first connection: prepares
  collector_.start(options_.gc_interval, [this] { collect(int64_t(std::time(nullptr))); });
}

bool PostgresStore::load(std::string_view key, int64_t now, std::string* data) {
  Version ignored;
  return load_versioned(key, now, data, &ignored);
}

bool PostgresStore::load_versioned(std::string_view key, int64_t now, std::string* data,
                                   Version* version) {
  const std::string at = time_text(now);
  Call call(this);
  return call.run([&](Connection& c) {
    Result r = c.prepared("load", {key, at}, 0, options_.timeout, /*binary_result=*/true);
    if (PQntuples(r.get()) == 0) return false;
    data->assign(PQgetvalue(r.get(), 0, 0), size_t(PQgetlength(r.get(), 0, 0)));
    // A binary integer is big-endian, whatever its width.
    const char* bytes = PQgetvalue(r.get(), 0, 1);
    Version v = 0;
    for (int i = 0; i < PQgetlength(r.get(), 0, 1); ++i)
      v = (v << 8) | static_cast<unsigned char>(bytes[i]);
    *version = v;
    return true;
  });
}

void PostgresStore::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  const std::string expires = time_text(now + std::max<int64_t>(ttl, 1));
  Call call(this);
  call.run([&](Connection& c) {
    return c.prepared("save", {key, data, expires, principal_of(data)}, binary(1) | binary(3),
                      options_.timeout);
  });
}

void PostgresStore::erase(std::string_view key) {
  Call call(this);
  call.run([&](Connection& c) { return c.prepared("erase", {key}, 0, options_.timeout); });
}

void PostgresStore::move(std::string_view from, std::string_view to, std::string_view data,
                         int64_t now, int64_t ttl) {
  const std::string expires = time_text(now + std::max<int64_t>(ttl, 1));
  Call call(this);
  call.run([&](Connection& c) {
    return c.prepared("move", {to, data, expires, principal_of(data), from},
                      binary(1) | binary(3), options_.timeout);
  });
}

Commit PostgresStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                              int64_t now, int64_t ttl, Version expected) {
  const std::string expires = time_text(now + std::max<int64_t>(ttl, 1));
  const std::string at = time_text(now);
  const std::string version = std::to_string(int64_t(expected));  // bigint: signed
  Call call(this);
  // Sent again on a new connection when the server closed the old one, like
  // every statement here. Had the first one committed before the server
  // went, the second finds the version moved and answers changed: merge
  // reloads, cas reports a conflict.
  Result r = call.run([&](Connection& c) {
    if (from == to)
      return c.prepared("save_if", {from, data, expires, at, version, principal_of(data)},
                        binary(1) | binary(5), options_.timeout);
    return c.prepared("move_if", {from, data, expires, at, version, to, principal_of(data)},
                      binary(1) | binary(6), options_.timeout);
  });
  if (PQntuples(r.get()) != 1 || PQnfields(r.get()) != 2)
    fail(Errc::store_unavailable, name_ + ": unexpected answer to the conditional save");
  auto yes = [&](int column) { return PQgetvalue(r.get(), 0, column)[0] == 't'; };
  return yes(0) ? Commit::written : yes(1) ? Commit::changed : Commit::gone;
}

size_t PostgresStore::collect(int64_t now) {
  const std::string at = time_text(now);
  size_t removed = 0;
  while (true) {
    Call call(this);  // a connection per batch: requests get theirs in between
    Result r = call.run([&](Connection& c) { return c.prepared("collect", {at}, 0, options_.timeout); });
    const int batch = std::atoi(PQcmdTuples(r.get()));
    removed += size_t(batch);
    if (batch < kCollectBatch) return removed;
  }
}

void PostgresStore::principal_records(std::string_view principal, int64_t now,
                                      KeyedRecords* out) {
  const std::string at = time_text(now);
  Call call(this);
  Result r = call.run([&](Connection& c) {
    return c.prepared("principal", {principal, at}, binary(0), options_.timeout,
                      /*binary_result=*/true);
  });
  // Binary text is its bytes; binary bytea its raw bytes.
  for (int i = 0; i < PQntuples(r.get()); ++i)
    out->emplace_back(std::string(PQgetvalue(r.get(), i, 0), size_t(PQgetlength(r.get(), i, 0))),
                      std::string(PQgetvalue(r.get(), i, 1), size_t(PQgetlength(r.get(), i, 1))));
}

Scheme postgres_scheme() {
  return {{"postgresql", "postgres"},
          {"table", "pool", "connect_timeout_ms", "timeout_ms", "gc_interval"},
          // Any libpq connection parameter (sslmode, application_name, ...).
          [](std::string_view name) {
            static const std::vector<std::string> keywords = [] {  // libpq's list, read once
              std::vector<std::string> out;
              if (PQconninfoOption* defaults = PQconndefaults()) {
                for (PQconninfoOption* p = defaults; p->keyword; ++p) out.emplace_back(p->keyword);
                PQconninfoFree(defaults);
              }
              return out;
            }();
            return std::find(keywords.begin(), keywords.end(), name) != keywords.end();
          },
          [](const OpenRequest& r) {
            return PostgresStore::open(r.uri.scheme + ":" + r.uri.rest_encoded, r.options);
          }};
}

}  // namespace sessions::internal
