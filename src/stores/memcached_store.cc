#include "memcached_store.h"

#include <libmemcached/memcached.h>

#include <charconv>
#include <cstdlib>
#include <ctime>

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
  // client. Every operation the store sends is idempotent.
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
  size_t smallest = 0;
  auto on_stat = [](const memcached_instance_st*, const char* key, size_t key_length,
                    const char* value, size_t value_length, void* context) {
    if (std::string_view(key, key_length) == "item_size_max") {
      size_t limit = 0;
      std::from_chars(value, value + value_length, limit);
      size_t& smallest = *static_cast<size_t*>(context);
      if (limit && (smallest == 0 || limit < smallest)) smallest = limit;
    }
    return MEMCACHED_SUCCESS;
  };
  memcached_return_t rc = memcached_stat_execute(call.get(), "settings", on_stat, &smallest);
  if (rc != MEMCACHED_SUCCESS) call.fail_with(rc, "settings check");
  // Room for the item header, the key and the CAS value.
  if (smallest > kItemOverhead) max_value_bytes_ = smallest - kItemOverhead;
}

MemcachedStore::~MemcachedStore() = default;

bool MemcachedStore::load(std::string_view key, int64_t, std::string* data) {
  const std::string full_key = options_.prefix + std::string(key);
  Call call(this);
  size_t length = 0;
  uint32_t flags = 0;
  char* value = nullptr;
  memcached_return_t rc = call.run([&](memcached_st* mc) {
    memcached_return_t result = MEMCACHED_SUCCESS;
    std::free(value);
    value = memcached_get(mc, full_key.data(), full_key.size(), &length, &flags, &result);
    return result;
  });
  if (rc == MEMCACHED_NOTFOUND) return false;
  if (rc != MEMCACHED_SUCCESS) {
    std::free(value);
    call.fail_with(rc, "get");
  }
  data->assign(value ? value : "", length);
  std::free(value);
  return true;
}

void MemcachedStore::save(std::string_view key, std::string_view data, int64_t, int64_t ttl) {
  const std::string full_key = options_.prefix + std::string(key);
  Call call(this);
  const time_t expiry = expiry_for(ttl);
  memcached_return_t rc = call.run([&](memcached_st* mc) {
    return memcached_set(mc, full_key.data(), full_key.size(), data.data(), data.size(), expiry, 0);
  });
  if (rc != MEMCACHED_SUCCESS) call.fail_with(rc, "set");
}

void MemcachedStore::erase(std::string_view key) {
  const std::string full_key = options_.prefix + std::string(key);
  Call call(this);
  memcached_return_t rc = call.run([&](memcached_st* mc) {
    return memcached_delete(mc, full_key.data(), full_key.size(), 0);
  });
  if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) call.fail_with(rc, "delete");
}

Scheme memcached_scheme() {
  return {{"memcached"}, {"prefix", "pool", "connect_timeout_ms", "timeout_ms"}, nullptr,
          [](const OpenRequest& r) { return MemcachedStore::open(r.uri.rest_encoded, r.options); }};
}

}  // namespace sessions::internal
