#include "store.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <utility>

#include <openssl/evp.h>

#include "base64url.h"
#include "chunks.h"
#include "error.h"
#include "registry.h"
#include "times.h"

namespace sessions::internal {

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
  } else if (name == "compress") {
    if (value == "auto") compress = Compression::automatic;
    else if (value == "on") compress = Compression::on;
    else if (value == "off") compress = Compression::off;
    else fail(Errc::bad_option, "option compress: '" + std::string(value) + "' is not auto, on or off");
    compress_set = true;
  } else if (name == "concurrency") {
    if (value == "merge") concurrency = Concurrency::merge;
    else if (value == "cas") concurrency = Concurrency::cas;
    else if (value == "last_write") concurrency = Concurrency::last_write;
    else fail(Errc::bad_option, "option concurrency: '" + std::string(value) +
                                    "' is not merge, cas or last_write");
    concurrency_set = true;
  } else if (name == "compress_threshold") {
    compress_threshold = size_t(parse_int(name, value, 0, int64_t(1) << 30));
  } else if (name == "max_chunks") {
    max_chunks = size_t(parse_int(name, value, 1, int64_t(kMaxChunksLimit)));
  } else if (name == "revocation") {
    if (value.empty()) fail(Errc::bad_option, "option revocation: names a store URI");
    revocation.assign(value);
  } else if (name == "revocation_cache") {
    revocation_cache = parse_duration(name, value);
    if (revocation_cache < 0 || revocation_cache > 3600)
      fail(Errc::bad_option, "option revocation_cache: from 0 to 3600 seconds");
  } else if (name == "revocation_fail") {
    if (value == "closed") revocation_fail_open = false;
    else if (value == "open") revocation_fail_open = true;
    else fail(Errc::bad_option, "option revocation_fail: '" + std::string(value) +
                                    "' is not closed or open");
  } else if (name == "hash_keys") {
    hash_keys = parse_bool(name, value);
  } else {
    return false;
  }
  return true;
}

bool timed_out(const Settings& s, int64_t created, int64_t last_seen, int64_t now) {
  if (s.idle_timeout > 0 && saturating_sub(now, last_seen) > s.idle_timeout) return true;
  if (s.absolute_timeout > 0 && saturating_sub(now, created) > s.absolute_timeout) return true;
  return false;
}

void Config::set(std::string_view name, std::string_view value) {
  Settings scratch;
  if (!scratch.set(name, value) && !Registry::global().takes_option(name))
    fail(Errc::bad_option, "unknown option '" + std::string(name) +
                               "': neither a general option nor one a store scheme takes");
  options.emplace_back(name, value);
}

Store::Store(Settings settings, std::unique_ptr<Codec> codec, std::unique_ptr<Backend> backend)
    : settings_(std::move(settings)),
      codec_(std::move(codec)),
      backend_(std::move(backend)) {
  if (!settings_.compress_set)
    settings_.compress = backend_ && !backend_->private_to_process() ? Compression::automatic
                                                                     : Compression::off;
  if (!backend_ && settings_.concurrency_set && settings_.concurrency != Concurrency::last_write)
    fail(Errc::bad_option,
         "option concurrency: cookie: cannot merge or compare (the browser holds the session and "
         "sends back whichever cookie it kept last); use a server-side store");
  if (!backend_) settings_.concurrency = Concurrency::last_write;
  if (!settings_.revocation.empty() && backend_ && backend_->indexes_principals())
    fail(Errc::bad_option,
         "option revocation: this store ends a principal's sessions through its own index; a "
         "revocation store is for cookie: and for stores without one (memcached:)");
}

Store::SaveTurn::SaveTurn(const Store& store, std::string_view key) : store_(store), key_(key) {
  std::unique_lock<std::mutex> lock(store_.saving_mu_);
  store_.saving_done_.wait(lock, [&] { return store_.saving_.count(key_) == 0; });
  store_.saving_.insert(key_);
}

Store::SaveTurn::~SaveTurn() {
  {
    std::lock_guard<std::mutex> lock(store_.saving_mu_);
    store_.saving_.erase(key_);
  }
  store_.saving_done_.notify_all();
}

int64_t Store::default_now() { return int64_t(std::time(nullptr)); }

int64_t Store::now_us() const {
  if (clock_) return std::clamp<int64_t>(clock_(), 0, kMaxTime) * 1000000;
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

// The revocation= store's config: the same secrets (its codec is never
// used, but every store has one), and only the options of its own URI.
Config revocation_config(const Config& config) {
  Config out;
  out.secrets = config.secrets;
  return out;
}

}  // namespace

void Store::start(const Config& config) {
  if (backend_) backend_->start();
  if (!settings_.revocation.empty()) {
    std::shared_ptr<Store> holder = open(settings_.revocation, revocation_config(config));
    revocations_ = std::make_unique<Revocations>(holder->backend(), holder,
                                                 settings_.revocation_cache,
                                                 settings_.revocation_fail_open);
  } else if (backend_ && !backend_->indexes_principals()) {
    revocations_ = std::make_unique<Revocations>(backend_.get(), nullptr,
                                                 settings_.revocation_cache,
                                                 settings_.revocation_fail_open);
  }
}

void Store::hashed_record_key(std::string_view raw_id, std::string* out) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!EVP_Digest(raw_id.data(), raw_id.size(), digest, &size, EVP_sha256(), nullptr))
    fail(Errc::internal, "SHA-256 failed");
  out->clear();
  base64url_encode(std::string_view(reinterpret_cast<char*>(digest), size), out);
}

bool Store::record_key(std::string_view id_text, std::string* out) const {
  std::string raw;
  if (id_text.size() != 43 || !base64url_decode(id_text, &raw) || raw.size() != 32) return false;
  if (settings_.hash_keys) hashed_record_key(raw, out);
  else out->assign(id_text);
  return true;
}

std::shared_ptr<Store> Store::open(std::string_view uri, const Config& config) {
  std::shared_ptr<Store> store = build(uri, config);
  store->start(config);
  return store;
}

void Store::check(std::string_view uri, const Config& config) { build(uri, config); }

void Store::check_name(std::string_view uri, const Config& config, std::string_view name) {
  std::shared_ptr<Store> store = build(uri, config);
  validate_cookie_name(name);
  store->settings().cookie.validate_prefix(name);
}

// The revocation= URI, checked as far as open() would without dialling.
void Store::check_revocation_store(const Settings& settings, const Config& config) {
  if (settings.revocation.empty()) return;
  try {
    std::shared_ptr<Store> probe = build(settings.revocation, revocation_config(config));
    if (!probe->backend())
      fail(Errc::bad_option, "cookie: keeps no server state to hold stamps in");
    if (!probe->settings().revocation.empty())
      fail(Errc::bad_option, "a revocation store takes no revocation= of its own");
  } catch (const Error& e) {
    fail(Errc::bad_option, "option revocation: " + std::string(e.what()));
  }
}

namespace {

// The general options (URI first, so the config's explicit ones override
// them) into *settings; the rest are left for the backend.
OptionList apply_general_options(const OptionList& query, const Config& config, Settings* settings) {
  OptionList rest;
  for (const OptionList* list : {&query, &config.options})
    for (const auto& [name, value] : *list)
      if (!settings->set(name, value)) rest.emplace_back(name, value);
  settings->cookie.validate();
  return rest;
}

}  // namespace

std::shared_ptr<Store> Store::build(std::string_view uri, const Config& config) {
  ParsedUri parsed = parse_uri(uri);
  const Scheme* scheme = Registry::global().find(parsed.scheme);
  if (!scheme)
    fail(Errc::bad_uri, "unknown store scheme '" + parsed.scheme + "' (known: " +
                            Registry::global().names() + ")");
  Settings settings;
  OptionList backend_options = apply_general_options(parsed.query, config, &settings);
  // The codec first: a bad secret is reported before any server is dialled.
  auto codec = std::make_unique<Codec>(settings.codec, config.secrets);
  std::unique_ptr<Backend> backend = scheme->open({parsed, uri, settings, &backend_options});
  if (!backend_options.empty())
    fail(Errc::bad_option, "option " + backend_options.front().first + " does not apply to the " +
                               parsed.scheme + ": store");
  check_revocation_store(settings, config);
  return std::make_shared<Store>(std::move(settings), std::move(codec), std::move(backend));
}

std::shared_ptr<Store> Store::open_backend(
    const std::function<std::unique_ptr<Backend>(const Settings&)>& make_backend,
    const Config& config) {
  Settings settings;
  OptionList rest = apply_general_options({}, config, &settings);
  if (!rest.empty())
    fail(Errc::bad_option, "option " + rest.front().first +
                               " is not a general option (a custom backend takes its own options "
                               "in its factory, through sess_register_scheme)");
  auto codec = std::make_unique<Codec>(settings.codec, config.secrets);
  check_revocation_store(settings, config);
  std::unique_ptr<Backend> backend = make_backend(settings);
  auto store = std::make_shared<Store>(std::move(settings), std::move(codec), std::move(backend));
  store->start(config);
  return store;
}

}  // namespace sessions::internal
