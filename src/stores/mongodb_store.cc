#include "mongodb_store.h"

#include <mongoc/mongoc.h>

#include <cctype>
#include <cstring>
#include <mutex>

#include "error.h"
#include "builtin_stores.h"
#include "random.h"
#include "record.h"

namespace sessions::internal {
namespace {

// libmongoc's default log handler prints its debug chatter (a monitor that
// cannot reach a server, twice a second) to the host's stdout. Only warnings
// and errors reach it; the store reports failures through its own errors.
void quiet_log(mongoc_log_level_t level, const char* domain, const char* message, void* data) {
  if (level <= MONGOC_LOG_LEVEL_WARNING) mongoc_log_default_handler(level, domain, message, data);
}

// libmongoc wants mongoc_init() once per process before any other call.
void init_driver_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    mongoc_init();
    mongoc_log_set_handler(quiet_log, nullptr);
  });
}

std::string percent_encode(std::string_view in) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// Owns a heap bson_t (bson_t is over-aligned, which std::unique_ptr's
// template argument would drop).
class Bson {
 public:
  explicit Bson(bson_t* b) : b_(b) {}
  ~Bson() { bson_destroy(b_); }
  Bson(const Bson&) = delete;
  Bson& operator=(const Bson&) = delete;
  bson_t* get() const { return b_; }

 private:
  bson_t* b_;
};

// URI options that libmongoc reads but its mongoc_uri_option_is_* do not list.
bool is_driver_option(const std::string& name) {
  for (const char* known : {"w", "wtimeoutMS", "journal", "readPreference", "readPreferenceTags",
                            "maxStalenessSeconds", "readConcernLevel", "authMechanismProperties",
                            "authSource", "authMechanism", "appname", "compressors", "replicaSet"})
    if (name == known) return true;
  return false;
}

// Server error codes that mean "this document is too large".
bool too_large(const bson_error_t& e) {
  return e.code == 10334 /* BSONObjectTooLarge */ || e.code == 17419 /* document too large */ ||
         e.code == 2 /* BadValue: object to insert too large */;
}

}  // namespace

// A client popped from the pool for one call, pushed back on every path.
class MongoStore::Call {
 public:
  explicit Call(MongoStore* store) : store_(store), client_(mongoc_client_pool_pop(store->pool_)) {
    collection_ = mongoc_client_get_collection(client_, store->database_.c_str(),
                                               store->collection_.c_str());
  }
  ~Call() {
    mongoc_collection_destroy(collection_);
    mongoc_client_pool_push(store_->pool_, client_);
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  mongoc_client_t* client() const { return client_; }
  mongoc_collection_t* collection() const { return collection_; }

  [[noreturn]] void fail_with(const bson_error_t& e, const char* what) const {
    std::string message = store_->name_ + ": " + what + ": " + e.message;
    if ((e.domain == MONGOC_ERROR_SERVER && too_large(e)) || std::strstr(e.message, "too large"))
      fail(Errc::value_too_large, message);
    fail(Errc::store_unavailable, message);
  }

 private:
  MongoStore* store_;
  mongoc_client_t* client_;
  mongoc_collection_t* collection_ = nullptr;
};

std::unique_ptr<MongoStore> MongoStore::open(std::string_view scheme, std::string_view encoded_rest,
                                             OptionList* list) {
  init_driver_once();
  std::string collection = "sessions";
  if (auto v = take_option(list, "collection")) collection = safe_identifier("collection", *v);
  std::optional<std::string> timeout_ms;
  if (auto v = take_option(list, "timeout_ms")) {
    parse_int("timeout_ms", *v, 1, 600000);
    timeout_ms = *v;
  }
  // The driver's own URI options go back into the URI it parses.
  std::string uri_text = std::string(scheme) + ":" + std::string(encoded_rest);
  char separator = '?';
  for (auto it = list->begin(); it != list->end();) {
    const std::string& name = it->first;
    if (mongoc_uri_option_is_int32(name.c_str()) || mongoc_uri_option_is_int64(name.c_str()) ||
        mongoc_uri_option_is_bool(name.c_str()) || mongoc_uri_option_is_utf8(name.c_str()) ||
        is_driver_option(name)) {
      uri_text += separator + percent_encode(name) + "=" + percent_encode(it->second);
      separator = '&';
      it = list->erase(it);
    } else {
      ++it;
    }
  }
  bson_error_t error;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(uri_text.c_str(), &error);
  if (!uri) fail(Errc::bad_uri, std::string("mongodb: URI: ") + error.message);
  // timeout_ms bounds server selection and every socket operation, unless
  // the URI sets the driver's own options.
  if (timeout_ms) {
    const int32_t ms = int32_t(std::stol(*timeout_ms));
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
      mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, ms);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
      mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, ms);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
      mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, ms);
  }
  const char* db = mongoc_uri_get_database(uri);
  std::string database = db && *db ? db : "sessions";
  return std::make_unique<MongoStore>(uri, std::move(database), std::move(collection));
}

MongoStore::MongoStore(mongoc_uri_t* uri, std::string database, std::string collection)
    : database_(std::move(database)), collection_(std::move(collection)), uri_(uri) {
  name_ = "mongodb ";
  const mongoc_host_list_t* hosts = mongoc_uri_get_hosts(uri_);
  name_ += hosts ? hosts->host_and_port : "(srv)";
  name_ += "/" + database_ + "." + collection_;
}

MongoStore::~MongoStore() {
  if (pool_) mongoc_client_pool_destroy(pool_);
  mongoc_uri_destroy(uri_);
}

void MongoStore::start() {
  // The pool is made here, not at open: for mongodb+srv it resolves DNS.
  bson_error_t error;
  pool_ = mongoc_client_pool_new_with_error(uri_, &error);
  if (!pool_) fail(Errc::bad_uri, "mongodb: " + std::string(error.message));
  mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_set_appname(pool_, "libsessions");
  Call call(this);
  Bson ping(BCON_NEW("ping", BCON_INT32(1)));
  if (!mongoc_client_command_simple(call.client(), "admin", ping.get(), nullptr, nullptr, &error))
    call.fail_with(error, "ping");
  // expireAfterSeconds 0: each document expires at its own expires_at. The
  // principal index is sparse: documents without a principal (the field
  // absent) are not in it, so their writes cost no index update; an
  // equality on a principal cannot match them, so the listing uses it.
  Bson create(BCON_NEW("createIndexes", BCON_UTF8(collection_.c_str()), "indexes", "[", "{",
                       "key", "{", "expires_at", BCON_INT32(1), "}", "name",
                       BCON_UTF8("expires_at_ttl"), "expireAfterSeconds", BCON_INT32(0), "}",
                       "{", "key", "{", "principal", BCON_INT32(1), "}", "name",
                       BCON_UTF8("principal"), "sparse", BCON_BOOL(true), "}", "]"));
  if (!mongoc_collection_write_command_with_opts(call.collection(), create.get(), nullptr, nullptr,
                                                 &error))
    call.fail_with(error, "createIndexes");
}

namespace {

// { _id: key, expires_at: { $gt: now } }: the live document under key.
void append_live(bson_t* filter, std::string_view key, int64_t now) {
  BSON_APPEND_UTF8(filter, "_id", std::string(key).c_str());
  bson_t expires;
  BSON_APPEND_DOCUMENT_BEGIN(filter, "expires_at", &expires);
  BSON_APPEND_DATE_TIME(&expires, "$gt", now * 1000);
  bson_append_document_end(filter, &expires);
}

// A fresh version for a write: random, so a deleted and rewritten document
// can never come back at a version someone still holds; never 0, which
// stands for "no version field" (documents written before versions).
Version new_version() {
  Version v = 0;
  while (v == 0 || int64_t(v) == INT64_MIN) random_bytes(&v, sizeof v);
  return v;
}

void append_version_filter(bson_t* filter, Version expected) {
  if (expected == 0) BSON_APPEND_NULL(filter, "version");  // matches a missing field
  else BSON_APPEND_INT64(filter, "version", int64_t(expected));
}

// A principal as a string field (its length given: any bytes are kept).
void append_principal(bson_t* doc, std::string_view principal) {
  bson_append_utf8(doc, "principal", -1, principal.data(), int(principal.size()));
}

// The bytes of a binary field; empty when the field is missing or not binary.
std::string binary_field(const bson_t* doc, const char* name) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, name) || !BSON_ITER_HOLDS_BINARY(&it)) return {};
  bson_subtype_t subtype;
  uint32_t length = 0;
  const uint8_t* bytes = nullptr;
  bson_iter_binary(&it, &subtype, &length, &bytes);
  return std::string(reinterpret_cast<const char*>(bytes), length);
}

}  // namespace

bool MongoStore::load(std::string_view key, int64_t now, std::string* data) {
  Version ignored;
  return load_versioned(key, now, data, &ignored);
}

bool MongoStore::load_versioned(std::string_view key, int64_t now, std::string* data,
                                Version* version) {
  Call call(this);
  Bson filter(bson_new());
  append_live(filter.get(), key, now);
  Bson opts(BCON_NEW("limit", BCON_INT64(1), "singleBatch", BCON_BOOL(true)));
  mongoc_cursor_t* cursor =
      mongoc_collection_find_with_opts(call.collection(), filter.get(), opts.get(), nullptr);
  const bson_t* doc = nullptr;
  const bool found = mongoc_cursor_next(cursor, &doc);
  bson_error_t error;
  if (!found && mongoc_cursor_error(cursor, &error)) {
    mongoc_cursor_destroy(cursor);
    call.fail_with(error, "find");
  }
  if (found) {
    // A document without binary data is someone else's: empty, malformed.
    *data = binary_field(doc, "data");
    *version = 0;
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "version") && BSON_ITER_HOLDS_INT64(&it))
      *version = Version(bson_iter_int64(&it));
  }
  mongoc_cursor_destroy(cursor);
  return found;
}

// One update_one; returns how many documents matched its filter.
int64_t MongoStore::update(const bson_t* selector, std::string_view data, int64_t now, int64_t ttl,
                           Version version, bool upsert) {
  Call call(this);
  Bson update(bson_new());
  bson_t set;
  const bool write = !data.empty() || upsert;
  const std::string_view principal = record_principal(data);
  BSON_APPEND_DOCUMENT_BEGIN(update.get(), "$set", &set);
  if (write) {
    BSON_APPEND_BINARY(&set, "data", BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const uint8_t*>(data.data()), uint32_t(data.size()));
    BSON_APPEND_DATE_TIME(&set, "expires_at", (now + std::max<int64_t>(ttl, 1)) * 1000);
    if (!principal.empty()) append_principal(&set, principal);
  }
  BSON_APPEND_INT64(&set, "version", int64_t(version));
  bson_append_document_end(update.get(), &set);
  // The principal goes with the data, in the same update: removed when the
  // record has none (it may have had one), so that the document leaves the
  // sparse index.
  if (write && principal.empty()) {
    bson_t unset;
    BSON_APPEND_DOCUMENT_BEGIN(update.get(), "$unset", &unset);
    BSON_APPEND_UTF8(&unset, "principal", "");
    bson_append_document_end(update.get(), &unset);
  }
  Bson opts(BCON_NEW("upsert", BCON_BOOL(upsert)));
  bson_t reply;
  bson_error_t error;
  const bool ok = mongoc_collection_update_one(call.collection(), selector, update.get(), opts.get(),
                                               &reply, &error);
  int64_t matched = 0;
  bson_iter_t it;
  if (ok && bson_iter_init_find(&it, &reply, "matchedCount")) matched = bson_iter_as_int64(&it);
  bson_destroy(&reply);
  if (!ok) call.fail_with(error, "update");
  return matched;
}

void MongoStore::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  Bson selector(bson_new());
  BSON_APPEND_UTF8(selector.get(), "_id", std::string(key).c_str());
  update(selector.get(), data, now, ttl, new_version(), /*upsert=*/true);
}

Commit MongoStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                           int64_t now, int64_t ttl, Version expected) {
  Bson selector(bson_new());
  append_live(selector.get(), from, now);
  append_version_filter(selector.get(), expected);
  // In place: one conditional update. Moved: the old document is claimed
  // (its version replaced, so no other save_if wins it), the new one
  // written, the old one deleted; a reader sees one or both, never neither.
  const bool moving = from != to;
  if (update(selector.get(), moving ? std::string_view() : data, now, ttl, new_version(),
             /*upsert=*/false) == 0) {
    std::string ignored;
    Version version;
    return load_versioned(from, now, &ignored, &version) ? Commit::changed : Commit::gone;
  }
  if (moving) {
    save(to, data, now, ttl);
    erase(from);
  }
  return Commit::written;
}

void MongoStore::erase(std::string_view key) {
  Call call(this);
  Bson selector(bson_new());
  BSON_APPEND_UTF8(selector.get(), "_id", std::string(key).c_str());
  bson_error_t error;
  if (!mongoc_collection_delete_one(call.collection(), selector.get(), nullptr, nullptr, &error))
    call.fail_with(error, "delete");
}

void MongoStore::principal_records(std::string_view principal, int64_t now, KeyedRecords* out) {
  Call call(this);
  // { principal: p, expires_at: { $gt: now } }: expired documents are left
  // out until the TTL monitor deletes them.
  Bson filter(bson_new());
  append_principal(filter.get(), principal);
  bson_t expires;
  BSON_APPEND_DOCUMENT_BEGIN(filter.get(), "expires_at", &expires);
  BSON_APPEND_DATE_TIME(&expires, "$gt", now * 1000);
  bson_append_document_end(filter.get(), &expires);
  mongoc_cursor_t* cursor =
      mongoc_collection_find_with_opts(call.collection(), filter.get(), nullptr, nullptr);
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) continue;  // not ours
    uint32_t length = 0;
    const char* key = bson_iter_utf8(&it, &length);
    out->emplace_back(std::string(key, length), binary_field(doc, "data"));
  }
  bson_error_t error;
  const bool failed = mongoc_cursor_error(cursor, &error);
  mongoc_cursor_destroy(cursor);
  if (failed) call.fail_with(error, "find");
}

Scheme mongodb_scheme() {
  return {{"mongodb", "mongodb+srv"},
          {"collection", "timeout_ms"},
          // The driver's own URI options (replicaSet, w, readPreference, ...).
          [](std::string_view name) {
            const std::string option(name);
            return mongoc_uri_option_is_int32(option.c_str()) ||
                   mongoc_uri_option_is_int64(option.c_str()) ||
                   mongoc_uri_option_is_bool(option.c_str()) ||
                   mongoc_uri_option_is_utf8(option.c_str()) || is_driver_option(option);
          },
          [](const OpenRequest& r) {
            return MongoStore::open(r.uri.scheme, r.uri.rest_encoded, r.options);
          }};
}

}  // namespace sessions::internal
