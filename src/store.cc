#include "store.h"

#include <algorithm>
#include <ctime>
#include <utility>

#include "error.h"
#include "file_store.h"
#include "memcached_store.h"
#include "memory_store.h"
#include "mongodb_store.h"
#include "postgres_store.h"
#include "redis_store.h"
#include "sqlite_store.h"

namespace sessions {
namespace {

// Options that only a backend understands. sess_config_set accepts them
// before the scheme is known; sess_store_open refuses those its backend lacks.
constexpr std::string_view kBackendOptions[] = {
    "max_sessions", "shards",                                               // memory:
    "prefix", "pool", "connect_timeout_ms", "timeout_ms", "db", "user", "password",  // redis:
    "fsync", "gc_interval",                                                 // file:
    "table", "busy_timeout_ms", "synchronous",                              // sqlite:
    "collection"};                                                          // mongodb:

template <typename List>
bool contains(const List& list, std::string_view item) {
  return std::find(std::begin(list), std::end(list), item) != std::end(list);
}

}  // namespace

bool Settings::set(std::string_view name, std::string_view value) {
  if (cookie.set(name, value)) return true;
  if (name == "idle_timeout") {
    idle_timeout = parse_duration(name, value);
    if (idle_timeout < 0) fail(Errc::bad_option, "option idle_timeout: must not be negative");
  } else if (name == "absolute_timeout") {
    absolute_timeout = parse_duration(name, value);
    if (absolute_timeout < 0) fail(Errc::bad_option, "option absolute_timeout: must not be negative");
  } else if (name == "codec") {
    if (value == "aes-gcm") codec = CodecMode::aes_gcm;
    else if (value == "hmac-sha256") codec = CodecMode::hmac_sha256;
    else fail(Errc::bad_option, "option codec: '" + std::string(value) +
                                    "' is not aes-gcm or hmac-sha256");
  } else if (name == "max_data_bytes") {
    max_data_bytes = size_t(parse_int(name, value, 64, int64_t(1) << 30));
  } else if (name == "hash_keys") {
    hash_keys = parse_bool(name, value);
  } else {
    return false;
  }
  return true;
}

void Config::set(std::string_view name, std::string_view value) {
  Settings scratch;
  if (!scratch.set(name, value) && !contains(kBackendOptions, name))
    fail(Errc::bad_option, "unknown option '" + std::string(name) + "'");
  options.emplace_back(name, value);
}

Store::Store(Settings settings, std::unique_ptr<Codec> codec, std::unique_ptr<Backend> backend)
    : settings_(std::move(settings)),
      codec_(std::move(codec)),
      backend_(std::move(backend)) {}

int64_t Store::default_now() { return int64_t(std::time(nullptr)); }

std::shared_ptr<Store> Store::open(std::string_view uri, const Config& config) {
  std::shared_ptr<Store> store = build(uri, config);
  if (store->backend()) store->backend()->start();
  return store;
}

void Store::check(std::string_view uri, const Config& config) { build(uri, config); }

std::shared_ptr<Store> Store::build(std::string_view uri, const Config& config) {
  ParsedUri parsed = parse_uri(uri);
  Settings settings;
  OptionList backend_options;
  // URI options first, so the config's explicit ones override them.
  for (const OptionList* list : {&std::as_const(parsed.query), &config.options})
    for (const auto& [name, value] : *list)
      if (!settings.set(name, value)) backend_options.emplace_back(name, value);
  settings.cookie.validate();

  // The codec first: a bad secret is reported before any server is dialled.
  auto codec = std::make_unique<Codec>(settings.codec, config.secrets);
  std::unique_ptr<Backend> backend;
  if (parsed.scheme == "cookie") {
    if (!parsed.rest.empty()) fail(Errc::bad_uri, "cookie: takes no location, only options");
  } else if (parsed.scheme == "memory") {
    backend = MemoryStore::open(parsed.rest, &backend_options);
  } else if (parsed.scheme == "redis" || parsed.scheme == "redis+unix") {
    backend = RedisStore::open(parsed.scheme, parsed.rest_encoded, &backend_options);
  } else if (parsed.scheme == "memcached") {
    backend = MemcachedStore::open(parsed.rest_encoded, &backend_options);
  } else if (parsed.scheme == "file") {
    backend = FileStore::open(parsed.rest, &backend_options);
  } else if (parsed.scheme == "postgresql" || parsed.scheme == "postgres") {
    backend = PostgresStore::open(parsed.scheme + ":" + parsed.rest_encoded, &backend_options);
  } else if (parsed.scheme == "mongodb" || parsed.scheme == "mongodb+srv") {
    backend = MongoStore::open(parsed.scheme, parsed.rest_encoded, &backend_options);
  } else if (parsed.scheme == "sqlite") {
    backend = SqliteStore::open(parsed.rest, &backend_options);
  } else {
    fail(Errc::bad_uri, "unknown store scheme '" + parsed.scheme +
                            "' (built in: cookie:, memory:, file:, sqlite:, redis:, redis+unix:, "
                            "memcached:, postgresql:, mongodb:)");
  }
  if (!backend_options.empty())
    fail(Errc::bad_option, "option " + backend_options.front().first + " does not apply to the " +
                               parsed.scheme + ": store");
  return std::make_shared<Store>(std::move(settings), std::move(codec), std::move(backend));
}

}  // namespace sessions
