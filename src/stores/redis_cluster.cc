#include "redis_cluster.h"

#include <hiredis/hiredis.h>

#include <charconv>

#include "error.h"

namespace sessions::internal {
namespace {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), the one the Redis
// Cluster specification names, table-driven.
constexpr std::array<uint16_t, 256> make_crc16_table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = uint16_t(i << 8);
    for (int bit = 0; bit < 8; ++bit) crc = uint16_t(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    table[size_t(i)] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16 = make_crc16_table();

uint16_t crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (unsigned char b : bytes) crc = uint16_t((crc << 8) ^ kCrc16[((crc >> 8) ^ b) & 0xff]);
  return crc;
}

std::string address(const std::string& host, int port) { return host + ":" + std::to_string(port); }

// "MOVED 3999 127.0.0.1:6381" -> host and port; false when malformed.
bool parse_redirect(std::string_view text, std::string* host, int* port) {
  const size_t space = text.rfind(' ');
  const size_t colon = text.rfind(':');
  if (space == std::string_view::npos || colon == std::string_view::npos || colon < space) return false;
  *host = std::string(text.substr(space + 1, colon - space - 1));
  std::string_view digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *port);
  return ec == std::errc() && end == digits.data() + digits.size() && *port > 0 && *port < 65536;
}

// The first reply that asks the client to go elsewhere or wait, if any.
const redisReply* first_redirect(const RedisReplies& replies) {
  for (const RedisReply& r : replies)
    if (is_error_code(*r, "MOVED") || is_error_code(*r, "ASK") || is_error_code(*r, "TRYAGAIN") ||
        is_error_code(*r, "CLUSTERDOWN") || is_error_code(*r, "LOADING"))
      return r.get();
  return nullptr;
}

}  // namespace

int cluster_key_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) & (kClusterSlots - 1);
}

RedisClusterRouter::RedisClusterRouter(std::vector<HostPort> seeds, const RedisLogin& login)
    : seeds_(std::move(seeds)), login_(login), slots_(kClusterSlots) {
  name_ = "redis cluster " + address(seeds_[0].host, seeds_[0].port);
  if (seeds_.size() > 1) name_ += ",...";
}

void RedisClusterRouter::start() { refresh(true); }

RedisClusterRouter::NodePtr RedisClusterRouter::node_of_slot(int slot) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return slots_[size_t(slot)];
}

RedisClusterRouter::NodePtr RedisClusterRouter::node_at(const std::string& host, int port) {
  const std::string where = address(host, port);
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = nodes_.find(where);
    if (it != nodes_.end()) return it->second;
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  NodePtr& node = nodes_[where];
  if (!node) node = std::make_shared<RedisNode>(host, port, login_);
  return node;
}

void RedisClusterRouter::refresh(bool force) {
  std::lock_guard<std::mutex> serial(refresh_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_refresh_ < std::chrono::milliseconds(100)) return;
  last_refresh_ = now;
  // The nodes known, then the seeds (a cluster whose nodes all changed
  // address since is found again through them).
  // The node that answered last time first: a dead host costs a
  // connect_timeout_ms each time it is asked.
  std::vector<NodePtr> candidates;
  if (last_answered_) candidates.push_back(last_answered_);
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& entry : nodes_) candidates.push_back(entry.second);
  }
  for (const HostPort& seed : seeds_) candidates.push_back(node_at(seed.host, seed.port));
  std::string why;
  for (const NodePtr& node : candidates) {
    if (!refresh_from(*node, &why)) continue;
    last_answered_ = node;
    return;
  }
  fail(Errc::store_unavailable, name_ + ": no node answered CLUSTER SLOTS: " + why);
}

bool RedisClusterRouter::refresh_from(RedisNode& node, std::string* why) {
  RedisReplies replies;
  try {
    node.run({{"CLUSTER", "SLOTS"}}, &replies);
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
  const redisReply& r = *replies[0];
  if (r.type != REDIS_REPLY_ARRAY) {
    *why = node.name() + ": " + (is_error(r) ? std::string(reply_text(r)) : "unexpected reply");
    return false;
  }
  std::vector<std::pair<std::array<int, 2>, std::pair<std::string, int>>> ranges;
  for (size_t i = 0; i < r.elements; ++i) {
    const redisReply& e = *r.element[i];
    if (e.type != REDIS_REPLY_ARRAY || e.elements < 3 || e.element[0]->type != REDIS_REPLY_INTEGER ||
        e.element[1]->type != REDIS_REPLY_INTEGER || e.element[2]->type != REDIS_REPLY_ARRAY ||
        e.element[2]->elements < 2 || e.element[2]->element[0]->type != REDIS_REPLY_STRING ||
        e.element[2]->element[1]->type != REDIS_REPLY_INTEGER)
      continue;
    const long long first = e.element[0]->integer, last = e.element[1]->integer;
    if (first < 0 || last >= kClusterSlots || first > last) continue;
    std::string host(reply_text(*e.element[2]->element[0]));
    if (host.empty()) host = node.host();  // "the address you asked"
    ranges.push_back({{int(first), int(last)}, {host, int(e.element[2]->element[1]->integer)}});
  }
  if (ranges.empty()) {
    *why = node.name() + ": CLUSTER SLOTS named no master";
    return false;
  }
  // Nodes keep their pools across refreshes; a node no longer in the map
  // goes once its last call returns.
  std::map<std::string, NodePtr> nodes;
  std::vector<NodePtr> slots(kClusterSlots);
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& [range, where] : ranges) {
      const std::string key = address(where.first, where.second);
      NodePtr& node_ptr = nodes[key];
      if (!node_ptr) {
        auto it = nodes_.find(key);
        node_ptr = it != nodes_.end() ? it->second
                                      : std::make_shared<RedisNode>(where.first, where.second, login_);
      }
      for (int s = range[0]; s <= range[1]; ++s) slots[size_t(s)] = node_ptr;
    }
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  slots_.swap(slots);
  nodes_.swap(nodes);
  return true;
}

void RedisClusterRouter::run(std::string_view key, const RedisPipeline& pipeline,
                             RedisReplies* replies) {
  const int slot = cluster_key_slot(key);
  RetryDeadline deadline(login_.timeout);
  NodePtr node = node_of_slot(slot);
  bool asking = false;
  std::string last_error;
  for (int redirects = 0;; ++redirects) {
    if (!node) {
      last_error = "slot " + std::to_string(slot) + " is served by no master";
    } else {
      try {
        node->run(pipeline, replies, asking);
        const redisReply* redirect = first_redirect(*replies);
        if (!redirect) return;
        const std::string_view text = reply_text(*redirect);
        std::string host;
        int port = 0;
        const bool moved = is_error_code(*redirect, "MOVED"), ask = is_error_code(*redirect, "ASK");
        if ((moved || ask) && redirects < 16 && parse_redirect(text, &host, &port)) {
          node = node_at(host, port);
          asking = ask;
          if (moved) {
            {
              std::unique_lock<std::shared_mutex> lock(mu_);
              slots_[size_t(slot)] = node;
            }
            try {
              refresh(false);
            } catch (const Error&) {  // the redirect itself is enough to go on
            }
          }
          continue;
        }
        last_error = node->name() + ": " + std::string(text);
      } catch (const Error& e) {
        if (e.code() != Errc::store_unavailable) throw;
        last_error = e.what();
      }
    }
    // Unreachable, TRYAGAIN, CLUSTERDOWN, a redirect loop: wait, look again.
    if (!deadline.pause())
      fail(Errc::store_unavailable, name_ + ": " + last_error + " (retried for " +
                                        std::to_string(login_.timeout.count()) + " ms)");
    try {
      refresh(false);
    } catch (const Error& e) {
      last_error = e.what();
    }
    node = node_of_slot(slot);
    asking = false;
    redirects = 0;
  }
}

}  // namespace sessions::internal
