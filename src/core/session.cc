#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base64url.h"
#include "error.h"
#include "random.h"
#include "times.h"

namespace sessions::internal {
namespace {

// A server-side record whose cookie is a browser-session cookie (max_age 0)
// and that has no idle or absolute timeout still needs an end.
constexpr int64_t kUnboundedRecordTtl = 30 * 86400;
// How long a server-side session's sealed ID cookie is sent back unchanged.
constexpr int64_t kCookieResendWindow = 60;

void validate_key(std::string_view key) {
  if (key.empty() || key.size() > 255)
    fail(Errc::invalid_argument, "keys must be 1 to 255 bytes");
  if (!is_valid_utf8(key)) fail(Errc::invalid_argument, "keys must be valid UTF-8");
}

// `enclosing` counts the containers around v; the outermost is level 1.
void validate_strings(const Value& v, int enclosing = 0) {
  const bool container = v.type() == Type::array || v.type() == Type::map;
  if (container && enclosing >= kMaxDepth)
    fail(Errc::invalid_argument, "value nests more than 24 containers deep");
  const int depth = enclosing;
  if (auto* s = v.get_if<std::string>()) {
    if (!is_valid_utf8(*s)) fail(Errc::invalid_argument, "strings must be valid UTF-8 (use bytes)");
  } else if (auto* d = v.get_if<double>()) {
    if (!std::isfinite(*d)) fail(Errc::invalid_argument, "doubles must be finite");
  } else if (auto* a = v.get_if<Array>()) {
    for (const auto& item : *a) validate_strings(item, depth + 1);
  } else if (auto* m = v.get_if<Map>()) {
    for (const auto& [key, item] : *m) {
      if (!is_valid_utf8(key)) fail(Errc::invalid_argument, "map keys must be valid UTF-8");
      validate_strings(item, depth + 1);
    }
  }
}


}  // namespace

void Session::start(std::shared_ptr<Store> store, std::string_view name) {
  store_ = std::move(store);
  name_.assign(name);
}

void Session::release() {
  store_.reset();
  name_.clear();
  record_.reset();
  status_ = SESS_STATUS_NEW;
  loaded_last_seen_ = 0;
  id_.clear();
  id_text_.clear();
  hashed_key_.clear();
  loaded_key_.clear();
  incoming_cookie_.clear();
  incoming_chunks_ = 0;
  cookie_override_.reset();
  loaded_version_ = 0;
  logging_changes_ = max_age_changed_ = false;
  changed_keys_.clear();
  flash_changes_.clear();
  identity_changes_ = 0;
  modified_ = regenerated_ = destroyed_ = finished_ = touch_requested_ = false;
  keys_stale_ = true;
  keys_.clear();
}

void Session::assign_id(std::string_view raw_id) {
  id_.assign(raw_id);
  id_text_.clear();
  base64url_encode(id_, &id_text_);
  if (store_->settings().hash_keys) store_->hashed_record_key(id_, &hashed_key_);
}

const std::string& Session::backend_key() const {
  return store_->settings().hash_keys ? hashed_key_ : id_text_;
}

int Session::open(std::string_view cookie_value, int64_t now) {
  std::string_view payload;
  const Store& store = *store_;
  Sealed sealed;
  // For cookie: the cookie is opened into the record's own buffer, where its
  // payload, the record's frame, is decoded in place; for server-side stores
  // into a small buffer that holds the ID.
  std::string* opened = store.backend() ? &scratch_id_cookie_ : load_buffer(&record_);
  int status = store.codec().decode(name_, cookie_value, now, opened, &payload, &sealed);
  if (status != SESS_STATUS_VALID) return status;
  if (!store.backend()) {
    // Sealed with our key: written by this library, no need for the strict check.
    if (!decode_loaded(&record_, payload, /*strict=*/false, store.settings().max_data_bytes))
      return SESS_STATUS_MALFORMED;
  } else {
    if (payload.size() != kIdSize) return SESS_STATUS_MALFORMED;
    assign_id(payload);
    const bool versioned = store.settings().concurrency != Concurrency::last_write;
    const bool found =
        versioned ? store.backend()->load_versioned(backend_key(), now, load_buffer(&record_),
                                                    &loaded_version_)
                  : store.backend()->load(backend_key(), now, load_buffer(&record_));
    if (!found) {
      // The cookie was sealed at the record's last save: if the record's TTL
      // has run out since, it expired; otherwise it was deleted or never was.
      const int64_t idle = store.settings().idle_timeout;
      const int64_t age = saturating_sub(now, sealed.at);
      return (idle > 0 && age > idle) || age >= kUnboundedRecordTtl ? SESS_STATUS_EXPIRED
                                                                   : SESS_STATUS_UNKNOWN_ID;
    }
    // A record we cannot read is left alone: the new session gets a new ID.
    if (!decode_loaded(&record_, !store.backend()->private_to_process(),
                       store.settings().max_data_bytes))
      return SESS_STATUS_MALFORMED;
    loaded_key_ = backend_key();
    logging_changes_ = store.settings().concurrency == Concurrency::merge;
    incoming_cookie_.assign(cookie_value);
    incoming_sealed_ = sealed;
  }
  if (timed_out(now)) return SESS_STATUS_EXPIRED;
  const Identity& identity = record_.identity;
  if (!identity.principal.empty() && store.revocations() &&
      store.revocations()->revoked(identity.principal, identity.auth_us, now))
    return SESS_STATUS_REVOKED;
  return SESS_STATUS_VALID;
}

// A chunked value (cookie: only) is joined from its NAME.i cookies first.
int Session::open_candidate(const CookieJar& jar, const CookieJar::Candidates& candidates,
                            size_t i, int64_t now) {
  std::string_view value = candidates.values[i];
  size_t count = 0;
  std::string_view first_piece;
  if (!store_->backend() && parse_chunk_header(value, &count, &first_piece)) {
    // Any count up to the limit is read, not only up to max_chunks: lowering
    // the option must not log out the sessions already written.
    if (!join_chunks(jar, name_, i, count, first_piece, &scratch_cookie_))
      return SESS_STATUS_MALFORMED;
    value = scratch_cookie_;
  }
  return open(value, now);
}

void Session::load(const CookieJar& jar) {
  const int64_t now = store_->now();
  // For cookie: the same pass notes the NAME.i cookies, so that a save can
  // expire those the session no longer uses.
  const CookieJar::Candidates candidates =
      jar.find(name_, store_->backend() ? nullptr : &incoming_chunks_);
  int first_failure = SESS_STATUS_NEW;
  for (size_t i = 0; i < candidates.count; ++i) {
    int status = open_candidate(jar, candidates, i, now);
    if (status == SESS_STATUS_VALID) {
      status_ = status;
      loaded_last_seen_ = record_.last_seen;
      return;
    }
    if (first_failure == SESS_STATUS_NEW) first_failure = status;
    record_.reset();
    forget_identity();
  }
  status_ = first_failure;
  record_.created = record_.last_seen = loaded_last_seen_ = now;
}

bool Session::timed_out(int64_t now) const {
  return internal::timed_out(store_->settings(), record_.created, record_.last_seen, now);
}

// With an idle timeout, an active session is re-saved now and then (at most
// every tenth of the timeout) so that its last_seen, and its record's expiry,
// follow the visits.
bool Session::touch_due(int64_t now) const {
  const int64_t idle = store_->settings().idle_timeout;
  return status_ == SESS_STATUS_VALID && idle > 0 &&
         saturating_sub(now, loaded_last_seen_) >= std::max<int64_t>(1, idle / 10);
}

// A touched session is renewed once a tenth of its lifetime (the idle
// timeout, else the cookie's max age) has passed since its last save, and at
// least once a minute: a busy session is written a few times per lifetime,
// not on every request, which also keeps short the window in which a renewal
// can overwrite a concurrent request's change.
bool Session::renewal_due(int64_t now, const CookieOptions& options) const {
  if (!touch_requested_ || status_ != SESS_STATUS_VALID) return false;
  const int64_t idle = store_->settings().idle_timeout;
  const int64_t lifetime = idle > 0 ? idle : options.max_age;
  int64_t window = kCookieResendWindow;
  if (lifetime > 0) window = std::clamp<int64_t>(lifetime / 10, 1, window);
  return saturating_sub(now, loaded_last_seen_) >= window;
}

// The store's cookie options, this session's override of them, and the
// max age the session remembers. Copies only when the max age differs, into
// *scratch, so the common save path copies nothing.
const CookieOptions& Session::effective_options(CookieOptions* scratch) const {
  const CookieOptions& chosen = cookie_override_ ? *cookie_override_ : store_->settings().cookie;
  if (!record_.max_age || *record_.max_age == chosen.max_age) return chosen;
  *scratch = chosen;
  scratch->max_age = *record_.max_age;
  return *scratch;
}

CookieOptions Session::effective_options() const {
  CookieOptions scratch;
  return effective_options(&scratch);
}

// A server-side session's cookie holds only its ID. While the ID, the max
// age and the sealing key are unchanged, the value the browser sent is sent
// back (with fresh attributes) instead of a newly sealed one, for up to a
// minute after it was sealed: an AES-GCM seal saved on most requests. The
// sealed time then lags by at most that window (a tenth of the max age or
// idle timeout when shorter), which is how much earlier the cookie's own
// max age can run out.
bool Session::can_resend_cookie(int64_t now, int64_t max_age) const {
  if (incoming_cookie_.empty() || regenerated_ || loaded_key_ != backend_key()) return false;
  const Sealed& sealed = incoming_sealed_;
  const int64_t sealed_max_age = max_age > 0 ? std::min<int64_t>(max_age, UINT32_MAX) : 0;
  if (!sealed.current_key || sealed.max_age != sealed_max_age) return false;
  int64_t window = kCookieResendWindow;
  if (max_age > 0) window = std::min(window, max_age / 10);
  const int64_t idle = store_->settings().idle_timeout;
  if (idle > 0) window = std::min(window, idle / 10);
  return now >= sealed.at && saturating_sub(now, sealed.at) < window;
}

// The record lives as long as the longest the session may still be used: the
// cookie's max age, cut by the idle and absolute timeouts.
int64_t Session::record_ttl(int64_t now, int64_t max_age) const {
  const Settings& s = store_->settings();
  int64_t ttl = max_age > 0 ? max_age : kUnboundedRecordTtl;
  if (s.idle_timeout > 0) ttl = std::min(ttl, s.idle_timeout);
  if (s.absolute_timeout > 0) ttl = std::min(ttl, saturating_sub(saturating_add(record_.created, s.absolute_timeout), now));
  return std::max<int64_t>(ttl, 1);
}

// Appends the deletions of the NAME.i cookies (i >= first) that the request
// carried: a session that shrank, or was destroyed, leaves no stale chunk.
void Session::expire_chunks_from(size_t first, const CookieOptions& options, int64_t now,
                                 SetCookieLines* lines) {
  if (incoming_chunks_ == 0) return;
  CookieOptions expire = options;
  expire.max_age = -1;
  std::string& name = scratch_attributes_;
  for (size_t i = std::max<size_t>(first, 1); i < kMaxChunksLimit; ++i) {
    if (!(incoming_chunks_ & (ChunkMask(1) << i))) continue;
    name.assign(name_).append(".").append(std::to_string(i));
    build_set_cookie(name, "", expire, now, &lines->add());
  }
}

void Session::save(SetCookieLines* lines) {
  const size_t first_line = lines->size();
  try {
    save_lines(lines);
  } catch (...) {
    lines->truncate(first_line);
    throw;
  }
}

void Session::save_lines(SetCookieLines* lines) {
  const int64_t now = store_->now();
  Backend* backend = store_->backend();

  if (destroyed_) {
    if (backend && !loaded_key_.empty()) backend->erase(loaded_key_);
    if (record_.values.empty() && record_.flashes().empty()) {
      CookieOptions expire = effective_options();
      if (status_ != SESS_STATUS_NEW) {  // the browser holds a cookie to expire
        CookieOptions deletion = expire;
        deletion.max_age = -1;
        build_set_cookie(name_, "", deletion, now, &lines->add());
      }
      expire_chunks_from(1, expire, now, lines);
      return;
    }
    // Written to after destroy ("you have been logged out"): what was
    // written goes into a fresh session, with a new ID, saved below.
    begin_fresh(now);
  }
  CookieOptions scratch;
  const CookieOptions& options = effective_options(&scratch);
  if (!modified_ && !regenerated_ && !touch_due(now) && !renewal_due(now, options)) return;

  record_.last_seen = now;
  const std::string_view data = encoded_record();
  // name=value is written straight into the Set-Cookie line, then the attributes.
  std::string& line = lines->add();
  line.assign(name_).push_back('=');
  if (backend) {
    if (data.size() > backend->max_record_bytes())
      fail(Errc::value_too_large, "session '" + name_ + "' is " + std::to_string(data.size()) +
                                      " bytes as stored; the store's server accepts at most " +
                                      std::to_string(backend->max_record_bytes()));
    if (id_.empty()) {
      char raw[kIdSize];
      random_bytes(raw, sizeof raw);
      assign_id(std::string_view(raw, sizeof raw));
    }
    if (can_resend_cookie(now, options.max_age))
      line.append(incoming_cookie_);
    else
      store_->codec().encode(name_, id_, now, options.max_age, &line);
    append_cookie_attributes(options, now, &line);
    if (line.size() > SESS_MAX_SET_COOKIE)
      fail(Errc::cookie_too_large, "session '" + name_ + "' needs a Set-Cookie of " +
                                       std::to_string(line.size()) +
                                       " bytes; browsers keep at most 4096");
    if (!store_record(data, now, record_ttl(now, options.max_age))) {
      // Ended by another request meanwhile (merge): the end wins, nothing is
      // saved and no cookie is sent.
      lines->truncate(lines->size() - 1);
      return;
    }
    loaded_key_ = backend_key();
  } else {
    store_->codec().encode(name_, data, now, options.max_age, &line);
    const size_t value_end = line.size();
    append_cookie_attributes(options, now, &line);
    size_t chunks = 1;
    if (line.size() > SESS_MAX_SET_COOKIE) chunks = split_into_chunks(value_end, lines);
    expire_chunks_from(chunks, options, now, lines);
  }
  regenerated_ = false;
}

// The record's bytes as sealed or stored: compressed when the settings say
// so. Throws Errc::value_too_large over max_data_bytes, which bounds every
// record that may be compressed, since it bounds inflating it.
std::string_view Session::encoded_record() {
  const Settings& settings = store_->settings();
  std::string& frame = scratch_record_;
  encode_record(record_, &frame);
  const bool compress =
      settings.compress == Compression::on ||
      (settings.compress == Compression::automatic && frame.size() >= settings.compress_threshold);
  if ((store_->backend() || compress) && frame.size() > settings.max_data_bytes)
    fail(Errc::value_too_large, "session '" + name_ + "' is " + std::to_string(frame.size()) +
                                    " bytes encoded; max_data_bytes is " +
                                    std::to_string(settings.max_data_bytes));
  std::string_view body = frame;
  if (compress) {
    compress_record(frame, &scratch_compressed_);
    if (settings.compress == Compression::on || scratch_compressed_.size() < frame.size())
      body = scratch_compressed_;
  }
  if (record_.identity.empty()) return body;
  std::string& whole = scratch_identity_;
  whole.clear();
  encode_identity(record_.identity, &whole);
  whole.append(body);
  return whole;
}

// The last line is one Set-Cookie too long for a browser; its sealed value
// is split across NAME, NAME.1, ... (chunks.h). Returns the chunk count.
size_t Session::split_into_chunks(size_t value_end, SetCookieLines* lines) {
  const size_t last = lines->size() - 1;
  std::string& line = lines->back();
  const size_t value_start = name_.size() + 1;
  scratch_cookie_.assign(line, value_start, value_end - value_start);
  scratch_attributes_.assign(line, value_end, std::string::npos);
  const size_t total = line.size();
  lines->truncate(last);
  const size_t max_chunks = store_->settings().max_chunks;
  const size_t chunks = emit_chunks(name_, scratch_cookie_, scratch_attributes_, max_chunks, lines);
  if (chunks == 0)
    fail(Errc::cookie_too_large,
         "session '" + name_ + "' needs a Set-Cookie of " + std::to_string(total) +
             " bytes, more than max_chunks=" + std::to_string(max_chunks) +
             " cookies of 4096 bytes hold (browsers keep at most 4096 per cookie)");
  return chunks;
}

void Session::check_writable() const {
  if (finished_) fail(Errc::state, "the request has finished; the session can no longer change");
}

void Session::changed() {
  modified_ = true;
  keys_stale_ = true;
}

const Value* Session::get(std::string_view key) const { return record_.values.find(key); }

void Session::set(std::string_view key, Value value) {
  check_writable();
  validate_key(key);
  validate_strings(value);
  record_.values.set(key, std::move(value));
  log_key(key);
  changed();
}

void Session::erase(std::string_view key) {
  check_writable();
  if (record_.values.erase(key)) {
    log_key(key);
    changed();
  }
}

void Session::clear() {
  check_writable();
  if (record_.values.empty()) return;
  if (logging_changes_)
    for (const std::string& key : record_.values.keys()) log_key(key);
  record_.values.clear();
  changed();
}

const std::vector<std::string>& Session::keys() const {
  if (keys_stale_) {
    keys_ = record_.values.keys();
    keys_stale_ = false;
  }
  return keys_;
}

void Session::add_flash(std::string_view kind, Value value) {
  check_writable();
  validate_key(kind);
  validate_strings(value);
  Map& flashes = record_.flashes();
  auto it = flashes.find(kind);
  if (it == flashes.end()) it = flashes.emplace(std::string(kind), Array()).first;
  if (logging_changes_) flash_changes_.push_back({std::string(kind), false, Array{value}});
  it->second.get_if<Array>()->push_back(std::move(value));
  changed();
}

Array Session::take_flashes(std::string_view kind) {
  check_writable();
  Map& flashes = record_.flashes();
  auto it = flashes.find(kind);
  if (it == flashes.end()) return Array();
  Array out = std::move(*it->second.get_if<Array>());
  flashes.erase(it);
  if (logging_changes_) flash_changes_.push_back({std::string(kind), true, out});
  changed();
  return out;
}

void Session::regenerate_id() {
  check_writable();
  if (store_->backend()) {
    char raw[kIdSize];
    random_bytes(raw, sizeof raw);
    assign_id(std::string_view(raw, sizeof raw));
  }
  // A token handed out before the new ID must not work after it (a login
  // that an attacker's token from before could otherwise ride).
  if (!record_.identity.csrf_secret.empty()) {
    new_csrf_secret(&record_.identity.csrf_secret);
    identity_changes_ |= kCsrfChanged;
  }
  regenerated_ = true;
}

void Session::touch() {
  check_writable();
  touch_requested_ = true;
}

void Session::forget_identity() {
  id_.clear();
  id_text_.clear();
  hashed_key_.clear();
  loaded_key_.clear();
  incoming_cookie_.clear();
  logging_changes_ = max_age_changed_ = false;
  changed_keys_.clear();
  flash_changes_.clear();
  identity_changes_ = 0;
}

void Session::begin_fresh(int64_t now) {
  forget_identity();
  record_.created = now;
  record_.max_age.reset();
  destroyed_ = regenerated_ = false;
}

void Session::destroy() {
  check_writable();
  record_.values.clear();
  record_.clear_flashes();
  record_.identity.clear();
  destroyed_ = true;
  changed();
}

void Session::set_option(std::string_view name, std::string_view value) {
  check_writable();
  CookieOptions options = effective_options();
  if (!options.set(name, value))
    fail(Errc::bad_option, "'" + std::string(name) + "' is not a cookie option");
  options.validate();
  options.validate_prefix(name_);
  if (name == "max_age") {
    if (options.max_age < 0) return destroy();
    record_.max_age = options.max_age;
    max_age_changed_ = true;
  }
  cookie_override_ = std::move(options);
  changed();
}

// ---- Principals and CSRF tokens ---------------------------------------------

void Session::set_principal(std::string_view principal) {
  check_writable();
  if (principal.size() > Identity::kMaxPrincipal)
    fail(Errc::invalid_argument, "principals are at most 255 bytes");
  if (!is_valid_utf8(principal)) fail(Errc::invalid_argument, "principals must be valid UTF-8");
  record_.identity.principal.assign(principal);
  record_.identity.auth_us = principal.empty() ? 0 : store_->now_us();
  identity_changes_ |= kPrincipalChanged;
  changed();
}

void Session::reauthenticate(int64_t auth_us) {
  check_writable();
  record_.identity.auth_us = auth_us;
  identity_changes_ |= kPrincipalChanged;
  changed();
}

void Session::set_metadata(std::string_view key, const std::string_view* value) {
  check_writable();
  if (key.empty() || key.size() > Identity::kMaxMetadataKey || !is_valid_utf8(key))
    fail(Errc::invalid_argument, "metadata keys are 1 to 64 bytes of UTF-8");
  auto& entries = record_.identity.metadata;
  auto it = std::lower_bound(entries.begin(), entries.end(), key,
                             [](const auto& entry, std::string_view k) { return entry.first < k; });
  const bool present = it != entries.end() && it->first == key;
  if (!value) {
    if (!present) return;
    entries.erase(it);
  } else {
    if (value->size() > Identity::kMaxMetadataValue || !is_valid_utf8(*value))
      fail(Errc::invalid_argument, "metadata values are at most 1024 bytes of UTF-8");
    if (present) {
      if (it->second == *value) return;
      it->second.assign(*value);
    } else {
      if (entries.size() == Identity::kMaxMetadataEntries)
        fail(Errc::invalid_argument, "a session keeps at most 16 metadata entries");
      entries.emplace(it, std::string(key), std::string(*value));
    }
  }
  identity_changes_ |= kMetadataChanged;
  changed();
}

bool Session::handle(std::string* out) const {
  if (!store_->backend() || id_.empty()) return false;
  session_handle(backend_key(), out);
  return true;
}

void Session::csrf_token(std::string* out) {
  std::string& secret = record_.identity.csrf_secret;
  if (secret.empty()) {
    check_writable();
    new_csrf_secret(&secret);
    identity_changes_ |= kCsrfChanged;
    changed();
  }
  internal::csrf_token(secret, out);
}

bool Session::csrf_matches(std::string_view token) const {
  return internal::csrf_matches(record_.identity.csrf_secret, token);
}

}  // namespace sessions::internal
