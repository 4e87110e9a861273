#include "memcached_store.h"

#include <libmemcached/memcached.h>

#include <charconv>
#include <ctime>
#include <string_view>

#include "error.h"
#include "builtin_stores.h"

namespace sessions::internal {
namespace {

// Memcached reads an expiry above 30 days as a Unix time, not a duration.
constexpr int64_t kMaxRelativeExpiry = 30 * 86400;
// What an item costs besides its value: header, key (up to 250), CAS.
constexpr size_t kItemOverhead = 512;

time_t expiry_for(int64_t ttl) {
  if (ttl <= 0) ttl = 1;
  if (ttl <= kMaxRelativeExpiry) return time_t(ttl);
  // Absolute, by this machine's clock (memcached compares with its own).
  return time_t(std::time(nullptr) + ttl);
}

}  // namespace

void MemcachedStore::ClientCloser::operator()(memcached_st* mc) const { memcached_free(mc); }

// A client leased for one call. Any failure other than "not found" or "too
// large" discards it (see the header).
class MemcachedStore::Call {
 public:
  explicit Call(MemcachedStore* store)
      : store_(store), lease_(store->pool_.acquire(store->options_.timeout, store->name_)) {
    reused_ = bool(lease_.get());
    if (!reused_) open_client();
  }

  memcached_st* get() { return lease_.get().get(); }

  // Runs op(client). A reused client whose connection the server closed
  // since its last use (a restart) fails at once: op runs once more on a new
  // client. Every operation the store sends is idempotent (a CAS write
  // nearly: see cas_write).
  template <typename Op>
  memcached_return_t run(Op&& op) {
    memcached_return_t rc = op(get());
    if (reused_ && connection_lost(rc)) {
      lease_.discard();
      open_client();
      reused_ = false;
      rc = op(get());
    }
    return rc;
  }

  [[noreturn]] void fail_with(memcached_return_t rc, const char* what) {
    const char* message = memcached_last_error_message(get());
    std::string why = message && *message ? message : memcached_strerror(get(), rc);
    if (rc == MEMCACHED_E2BIG)
      fail(Errc::value_too_large, store_->name_ + " refused the " + what +
                                      ": the value is larger than the server's item size "
                                      "limit (memcached -I): " + why);
    lease_.discard();
    fail(Errc::store_unavailable, store_->name_ + ": " + what + " failed: " + why);
  }

 private:
  static bool connection_lost(memcached_return_t rc) {
    return rc == MEMCACHED_CONNECTION_FAILURE || rc == MEMCACHED_WRITE_FAILURE ||
           rc == MEMCACHED_READ_FAILURE || rc == MEMCACHED_UNKNOWN_READ_FAILURE ||
           rc == MEMCACHED_ERRNO || rc == MEMCACHED_SERVER_TEMPORARILY_DISABLED;
  }

  void open_client() {
    lease_.set(Client(memcached_clone(nullptr, store_->template_.get())));
    if (!lease_.get()) fail(Errc::no_memory, store_->name_ + ": cannot create a client");
  }

  MemcachedStore* store_;
  Pool<Client>::Lease lease_;
  bool reused_ = false;
};

std::unique_ptr<MemcachedStore> MemcachedStore::open(std::string_view encoded_rest,
                                                     OptionList* list) {
  NetworkLocation loc = parse_network_location("memcached", encoded_rest, 11211);
  if (!loc.user.empty() || loc.has_password)
    fail(Errc::bad_uri, "memcached: SASL credentials are not supported");
  if (!loc.path.empty()) fail(Errc::bad_uri, "memcached: URI takes no path after the servers");
  // libmemcached's ketama continuum holds MEMCACHED_CONTINUUM_SIZE points,
  // MEMCACHED_POINTS_PER_SERVER per server, and aborts the process past it.
  constexpr size_t kMaxServers = MEMCACHED_CONTINUUM_SIZE / MEMCACHED_POINTS_PER_SERVER;
  if (loc.hosts.size() > kMaxServers)
    fail(Errc::bad_uri, "memcached: URI names " + std::to_string(loc.hosts.size()) +
                            " servers; libmemcached's consistent hashing takes at most " +
                            std::to_string(kMaxServers));
  Options o;
  o.servers = std::move(loc.hosts);
  if (auto prefix = take_option(list, "prefix")) o.prefix = *prefix;
  take_pool_size(list, &o.pool);
  take_milliseconds(list, "connect_timeout_ms", &o.connect_timeout);
  take_milliseconds(list, "timeout_ms", &o.timeout);
  // Keys are at most 250 bytes: the prefix plus a 43-byte ID must fit.
  if (o.prefix.size() > 200) fail(Errc::bad_option, "option prefix: at most 200 bytes");
  for (char c : o.prefix)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      fail(Errc::bad_option, "option prefix: memcached keys cannot hold spaces or control bytes");
  return std::make_unique<MemcachedStore>(o);
}

MemcachedStore::MemcachedStore(const Options& options)
    : options_(options), template_(memcached_create(nullptr)), pool_(options.pool) {
  name_ = "memcached";
  for (const auto& s : options_.servers)
    name_ += (&s == &options_.servers[0] ? " " : ",") + s.host + ":" + std::to_string(s.port);
  if (!template_) fail(Errc::no_memory, "memcached: out of memory");
  memcached_st* mc = template_.get();
  auto behave = [&](memcached_behavior_t flag, uint64_t value) {
    memcached_return_t rc = memcached_behavior_set(mc, flag, value);
    if (rc != MEMCACHED_SUCCESS)
      fail(Errc::internal, "memcached: cannot set a client behaviour: " +
                               std::string(memcached_strerror(nullptr, rc)));
  };
  behave(MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
  behave(MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);  // gets return each item's CAS value
  behave(MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA);
  behave(MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
  behave(MEMCACHED_BEHAVIOR_TCP_KEEPALIVE, 1);
  behave(MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, uint64_t(options_.connect_timeout.count()));
  behave(MEMCACHED_BEHAVIOR_POLL_TIMEOUT, uint64_t(options_.timeout.count()));
  behave(MEMCACHED_BEHAVIOR_RCV_TIMEOUT, uint64_t(options_.timeout.count()) * 1000);
  behave(MEMCACHED_BEHAVIOR_SND_TIMEOUT, uint64_t(options_.timeout.count()) * 1000);
  // Servers are never ejected (the default): that would move a failed
  // server's sessions to other servers, where they are missing, and users
  // would be logged out instead of getting an error.
  for (const auto& s : options_.servers) {
    memcached_return_t rc = memcached_server_add(mc, s.host.c_str(), in_port_t(s.port));
    if (rc != MEMCACHED_SUCCESS)
      fail(Errc::bad_uri, "memcached: cannot add server " + s.host + ": " +
                              memcached_strerror(nullptr, rc));
  }
}

void MemcachedStore::start() {
  Call call(this);
  // Every server's item size limit (memcached -I), which also checks that
  // all of them answer. A set over the limit is refused here, before it is
  // sent: memcached drops the key's current value when it refuses a set.
  // And whether they all keep CAS values (not with -C).
  struct Settings {
    size_t smallest = 0;
    bool cas_enabled = true;
  } settings;
  auto on_stat = [](const memcached_instance_st*, const char* key, size_t key_length,
                    const char* value, size_t value_length, void* context) {
    Settings& settings = *static_cast<Settings*>(context);
    const std::string_view name(key, key_length), text(value, value_length);
    if (name == "item_size_max") {
      size_t limit = 0;
      std::from_chars(value, value + value_length, limit);
      if (limit && (settings.smallest == 0 || limit < settings.smallest)) settings.smallest = limit;
    } else if (name == "cas_enabled" && text == "no") {
      settings.cas_enabled = false;
    }
    return MEMCACHED_SUCCESS;
  };
  memcached_return_t rc = memcached_stat_execute(call.get(), "settings", on_stat, &settings);
  if (rc != MEMCACHED_SUCCESS) call.fail_with(rc, "settings check");
  // Room for the item header, the key and the CAS value.
  if (settings.smallest > kItemOverhead) max_value_bytes_ = settings.smallest - kItemOverhead;
  cas_enabled_ = settings.cas_enabled;
}

MemcachedStore::~MemcachedStore() = default;

// memcached_get() gives no CAS value: this is the same single-key get as
// memcached_mget() (the key and a no-op in one write, so one round trip),
// read through a result object, which holds it. The loop reads the item,
// if any, then the no-op's reply that ends the batch, so the client is left
// with nothing pending.
bool MemcachedStore::get_with_cas(Call& call, const std::string& full_key, std::string* data,
                                  Version* cas) {
  bool found = false;
  memcached_return_t rc = call.run([&](memcached_st* mc) {
    found = false;
    const char* keys[] = {full_key.data()};
    const size_t lengths[] = {full_key.size()};
    memcached_return_t result_rc = memcached_mget(mc, keys, lengths, 1);
    if (memcached_failed(result_rc)) {
      // As memcached_get() does: the client's own error is the precise one
      // (a lost connection rather than "some errors"), which run() needs.
      memcached_return_t last = memcached_last_error(mc);
      return last != MEMCACHED_SUCCESS ? last : result_rc;
    }
    memcached_result_st result;
    if (!memcached_result_create(mc, &result)) return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    while (memcached_fetch_result(mc, &result, &result_rc)) {
      const char* value = memcached_result_value(&result);
      data->assign(value ? value : "", memcached_result_length(&result));
      *cas = memcached_result_cas(&result);
      found = true;
    }
    memcached_result_free(&result);
    if (result_rc == MEMCACHED_END || result_rc == MEMCACHED_NOTFOUND)
      return found ? MEMCACHED_SUCCESS : MEMCACHED_NOTFOUND;
    return result_rc;
  });
  if (rc == MEMCACHED_NOTFOUND) return false;
  if (rc != MEMCACHED_SUCCESS) call.fail_with(rc, "get");
  return true;
}

void MemcachedStore::set(Call& call, const std::string& full_key, std::string_view data,
                         int64_t ttl) {
  const time_t expiry = expiry_for(ttl);
  memcached_return_t rc = call.run([&](memcached_st* mc) {
    return memcached_set(mc, full_key.data(), full_key.size(), data.data(), data.size(), expiry, 0);
  });
  if (rc != MEMCACHED_SUCCESS) call.fail_with(rc, "set");
}

// A write that the server applies only while the item's CAS value is still
// `expected`. run() sends it again on a new client when a reused one lost
// its connection; had the first been applied, the second answers "changed"
// for a write that landed. That takes a connection broken between the
// server's write and its reply; a restart, the common case, breaks it
// before (and a server that dies after the write loses the item anyway).
Commit MemcachedStore::cas_write(Call& call, const std::string& full_key, std::string_view data,
                                 int64_t ttl, Version expected) {
  const time_t expiry = expiry_for(ttl);
  memcached_return_t rc = call.run([&](memcached_st* mc) {
    return memcached_cas(mc, full_key.data(), full_key.size(), data.data(), data.size(), expiry,
                         0, expected);
  });
  if (rc == MEMCACHED_SUCCESS) return Commit::written;
  if (rc == MEMCACHED_DATA_EXISTS) return Commit::changed;
  if (rc == MEMCACHED_NOTFOUND) return Commit::gone;
  call.fail_with(rc, "cas");
}

void MemcachedStore::remove(Call& call, const std::string& full_key) {
  memcached_return_t rc = call.run([&](memcached_st* mc) {
    return memcached_delete(mc, full_key.data(), full_key.size(), 0);
  });
  if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) call.fail_with(rc, "delete");
}

bool MemcachedStore::load(std::string_view key, int64_t, std::string* data) {
  Call call(this);
  Version ignored = 0;
  return get_with_cas(call, options_.prefix + std::string(key), data, &ignored);
}

bool MemcachedStore::load_versioned(std::string_view key, int64_t now, std::string* data,
                                    Version* version) {
  // Without CAS values every item's is 0: the bytes' digest instead.
  if (!cas_enabled_) return Backend::load_versioned(key, now, data, version);
  Call call(this);
  return get_with_cas(call, options_.prefix + std::string(key), data, version);
}

void MemcachedStore::save(std::string_view key, std::string_view data, int64_t, int64_t ttl) {
  Call call(this);
  set(call, options_.prefix + std::string(key), data, ttl);
}

void MemcachedStore::erase(std::string_view key) {
  Call call(this);
  remove(call, options_.prefix + std::string(key));
}

// A moved ID (from != to) spans two keys, likely on two servers, and
// memcached has no transaction over them. The old item is claimed instead:
// its own bytes are written back under `expected` (one more get fetches
// them). A failed claim writes nothing. A successful one changes the old
// item's CAS value, so every other request holding the version this one
// loaded now fails (changed: merge reloads, cas reports a conflict), while
// the old ID's content stays as it was: the new record, which may hold the
// login regenerate_id was called for, never appears under the old ID. Then
// the new key is set and the old deleted, so a reader sees the old item,
// both, or the new one, never neither. What stays open: a request that
// loads the old item after the claim and saves it before the delete is
// acknowledged and then deleted with it; it raced the move, which ends that
// ID (memcached's delete takes no CAS value, so it cannot be refused).
Commit MemcachedStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                               int64_t now, int64_t ttl, Version expected) {
  if (!cas_enabled_) return Backend::save_if(from, to, data, now, ttl, expected);
  const std::string from_key = options_.prefix + std::string(from);
  Call call(this);
  if (from == to) return cas_write(call, from_key, data, ttl, expected);
  std::string current;
  Version version = 0;
  if (!get_with_cas(call, from_key, &current, &version)) return Commit::gone;
  if (version != expected) return Commit::changed;
  // The claim keeps `ttl`: if the steps below fail, the old ID lives on,
  // unchanged, instead of the session ending before its time.
  const Commit claim = cas_write(call, from_key, current, ttl, expected);
  if (claim != Commit::written) return claim;
  set(call, options_.prefix + std::string(to), data, ttl);
  remove(call, from_key);
  return Commit::written;
}

Scheme memcached_scheme() {
  return {{"memcached"}, {"prefix", "pool", "connect_timeout_ms", "timeout_ms"}, nullptr,
          [](const OpenRequest& r) { return MemcachedStore::open(r.uri.rest_encoded, r.options); }};
}

}  // namespace sessions::internal
