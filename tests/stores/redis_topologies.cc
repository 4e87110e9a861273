// How the topologies are made and watched: processes from servers.h, the
// cluster built and changed by redis-cli, every state read with hiredis on a
// fresh connection per command, bounded by a 2 s timeout (so a dead or paused
// node is an answer the pollers retry, never a hang).
#include "redis_topologies.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sessions::testing {
namespace {

std::string addr(int port) { return "127.0.0.1:" + std::to_string(port); }
bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Calls not_ready (why not yet; "" once ready) every 20 ms. Returns the
// milliseconds until ready; throws with the last reason after timeout_ms.
template <class F>
long poll_until(const std::string& what, int timeout_ms, F not_ready) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const std::string why = not_ready();
    const long ms = long(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start).count());
    if (why.empty()) return ms;
    if (ms > timeout_ms)
      throw std::runtime_error(what + " not reached in " + std::to_string(timeout_ms) + " ms: " + why);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A reply copied out of hiredis; type 0: no connection (str says why).
struct Reply {
  int type = 0;
  std::string str;
  std::vector<Reply> elements;
  bool ok() const { return type != 0 && type != REDIS_REPLY_ERROR; }
  // A field of a flat [name, value, ...] array (SENTINEL MASTER), or else
  // of an INFO text ("name:value" lines); "" if absent.
  std::string operator[](const std::string& name) const {
    for (size_t i = 0; i + 1 < elements.size(); i += 2)
      if (elements[i].str == name) return elements[i + 1].str;
    const std::string text = "\n" + str, key = "\n" + name + ":";
    const size_t at = text.find(key), begin = at + key.size();
    return at == std::string::npos ? "" : text.substr(begin, text.find_first_of("\r\n", begin) - begin);
  }
};

Reply copy(const redisReply* r) {
  Reply out;
  out.type = r->type;
  if (r->str) out.str.assign(r->str, r->len);
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i)
    out.elements.push_back(copy(r->element[i]));
  return out;
}

// One command, after AUTH if a password is given.
Reply command(int port, const std::vector<std::string>& args, const std::string& password = "") {
  const timeval timeout{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, timeout);
  Reply out;
  out.str = addr(port) + ": " + (c ? c->errstr : "cannot connect");
  if (!c || c->err) return redisFree(c), out;
  redisSetTimeout(c, timeout);
  std::vector<std::vector<std::string>> commands = {args};
  if (!password.empty()) commands.insert(commands.begin(), {"AUTH", password});
  for (const auto& argv : commands) {
    std::vector<const char*> p;
    std::vector<size_t> n;
    for (const auto& a : argv) p.push_back(a.data()), n.push_back(a.size());
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, int(p.size()), p.data(), n.data()));
    out = r ? copy(r) : Reply();
    if (r) freeReplyObject(r);
    else out.str = addr(port) + ": " + c->errstr;
    if (!out.ok()) break;
  }
  redisFree(c);
  return out;
}

// Runs redis-cli (its arguments are addresses, numbers and node ids: nothing
// to quote) with its output into `log`, killed after timeout_s; throws with
// the end of that output unless it exits 0.
void redis_cli(const std::string& args, const std::string& log, int timeout_s) {
  const std::string line = "timeout -s KILL " + std::to_string(timeout_s) + " redis-cli " + args;
  if (std::system((line + " </dev/null >" + log + " 2>&1").c_str()) == 0) return;
  std::ifstream in(log);
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  throw std::runtime_error(line + " failed:\n" + text.substr(text.size() > 4000 ? text.size() - 4000 : 0));
}

// A port for a cluster node: free_port() gives a free ephemeral port (32768
// and up), but a node also listens on its bus port, port + 10000, which must
// exist (<= 65535) and be free too. Ports handed out are remembered, so a
// killed node's ports are not given to another node meanwhile.
int free_cluster_port() {
  static std::mutex mutex;
  static std::set<int> handed_out;
  std::lock_guard<std::mutex> lock(mutex);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = free_port(), bus = port + 10000;
    if (bus > 65535 || handed_out.count(port) || handed_out.count(bus)) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0), one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as redis-server binds it
    sockaddr_in sa{};
    sa.sin_family = AF_INET, sa.sin_port = htons(uint16_t(bus)), sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    if (free) return handed_out.insert({port, bus}), port;
  }
  throw std::runtime_error("no free port with a free cluster bus port");
}

// A line of CLUSTER NODES: id ip:port@bus[,host] flags master ping pong epoch link slots...
struct Entry {
  std::string id, master_id;
  int port = 0, slot_count = 0;
  bool master = false, failed = false, handshake = false, migrating = false;
  std::vector<std::pair<int, int>> slots;  // inclusive ranges
};

std::vector<Entry> parse_nodes(const std::string& text) {
  std::vector<Entry> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream in(line);
    const std::vector<std::string> w{std::istream_iterator<std::string>(in), {}};
    if (w.size() < 8) continue;
    Entry e;
    e.id = w[0], e.master_id = w[3];
    e.port = std::atoi(w[1].c_str() + w[1].rfind(':', w[1].find('@')) + 1);
    const std::string flags = "," + w[2] + ",";
    auto flag = [&](const std::string& f) { return flags.find("," + f + ",") != std::string::npos; };
    // "fail": FAIL, agreed by the masters; not a PFAIL ("fail?"), one node's suspicion.
    e.master = flag("master"), e.failed = flag("fail"), e.handshake = flag("handshake");
    for (size_t i = 8; i < w.size(); ++i) {
      if (w[i][0] == '[') {  // [slot->-id] migrating, [slot-<-id] importing
        e.migrating = true;
        continue;
      }
      const size_t dash = w[i].find('-');
      const int a = std::atoi(w[i].c_str()), b = dash == std::string::npos ? a : std::atoi(&w[i][dash + 1]);
      e.slots.emplace_back(a, b);
      e.slot_count += b - a + 1;
    }
    out.push_back(e);
  }
  return out;
}

// What the nodes must agree on: which master serves which slots, and when
// `full`, every node's role, master, FAIL flag and half-migrated slots too.
std::string signature(std::vector<Entry> entries, bool full) {
  std::map<std::string, int> port_of;
  for (const auto& e : entries) port_of[e.id] = e.port;
  std::sort(entries.begin(), entries.end(), [](auto& a, auto& b) { return a.port < b.port; });
  std::string out;
  for (const auto& e : entries) {
    if (e.handshake || (!full && (!e.master || e.failed || !e.slot_count))) continue;
    out += std::to_string(e.port);
    if (full)
      out += (e.master ? " master" : " replica of " + std::to_string(port_of[e.master_id])) +
             std::string(e.failed ? " FAIL" : "") + (e.migrating ? " migrating" : "");
    for (auto [a, b] : e.slots) out += " " + std::to_string(a) + "-" + std::to_string(b);
    out += "\n";
  }
  return out;
}

// The ports of the nodes or sentinels in `v`, only those running if live_only.
template <class T>
std::vector<int> ports_of(const std::vector<std::unique_ptr<T>>& v, bool live_only) {
  std::vector<int> out;
  for (const auto& n : v)
    if (!live_only || n->process.running()) out.push_back(n->port);
  return out;
}

// The topology as the first live node that answers sees it.
std::vector<Entry> topology(const std::vector<int>& live) {
  std::string errors;
  for (int port : live) {
    Reply r = command(port, {"CLUSTER", "NODES"});
    if (r.ok()) return parse_nodes(r.str);
    errors += " " + r.str;
  }
  throw std::runtime_error("no cluster node answers CLUSTER NODES:" + errors);
}

}  // namespace

struct RedisCluster::Node {
  TempDir dir;
  int port;
  ServerProcess process;
  Node(int p, int node_timeout_ms, const std::string& extra)
      : port(p), process({"redis-server", dir.path() + "/redis.conf"}, p) {
    std::ofstream(dir.path() + "/redis.conf")
        << "bind 127.0.0.1\nport " << port << "\ndir " << dir.path() << "\nlogfile " << dir.path()
        << "/redis.log\ndaemonize no\nsave \"\"\nappendonly no\ncluster-enabled yes\n"
        << "cluster-config-file nodes.conf\ncluster-node-timeout " << node_timeout_ms << "\n"
        // A replica syncs at once, not after the default 5 s wait for other replicas.
        << "repl-diskless-sync-delay 0\n"
        // The topology stays as the test made it: no replica moves to an orphaned
        // master, and a master resharded down to no slots stays a master.
        << "cluster-allow-replica-migration no\n"
        << extra;
  }
};

RedisCluster::RedisCluster(int masters, int replicas_per_master, int node_timeout_ms,
                           const std::string& extra)
    : node_timeout_ms_(node_timeout_ms), extra_(extra) {
  if (masters < 3) throw std::invalid_argument("redis-cli makes clusters of 3 masters or more");
  std::string args = "--cluster create";
  for (int i = 0; i < masters * (1 + replicas_per_master); ++i) args += " " + addr(start_node().port);
  redis_cli(args + " --cluster-replicas " + std::to_string(replicas_per_master) + " --cluster-yes",
            dir_.path() + "/redis-cli.log", 60);
  wait_settled(60000);
  created_masters_ = master_ports();
}

RedisCluster::~RedisCluster() = default;

RedisCluster::Node& RedisCluster::start_node() {
  nodes_.push_back(std::make_unique<Node>(free_cluster_port(), node_timeout_ms_, extra_));
  nodes_.back()->process.start();
  return *nodes_.back();
}

RedisCluster::Node& RedisCluster::node(int port) const {
  for (const auto& n : nodes_)
    if (n->port == port) return *n;
  throw std::invalid_argument("no cluster node on port " + std::to_string(port));
}

ServerProcess& RedisCluster::process(int port) { return node(port).process; }

std::string RedisCluster::uri(const std::string& query) const {
  std::string out;
  for (int port : created_masters_) out += (out.empty() ? "" : ",") + addr(port);
  return "redis+cluster://" + out + (query.empty() ? "" : "?" + query);
}

std::vector<int> RedisCluster::master_ports() const {
  const std::vector<int> live = node_ports();
  std::vector<int> out;
  for (const auto& e : topology(live))
    if (e.master && !e.failed && !e.handshake && contains(live, e.port)) out.push_back(e.port);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int> RedisCluster::node_ports() const { return ports_of(nodes_, true); }

int RedisCluster::port_of_slot(int slot) const {
  for (const auto& e : topology(node_ports()))
    for (auto [a, b] : e.slots)
      if (e.master && !e.failed && a <= slot && slot <= b) return e.port;
  throw std::runtime_error("no master serves slot " + std::to_string(slot));
}

std::vector<int> RedisCluster::slots_of(int master_port) const {
  std::vector<int> out;
  for (const auto& e : topology(node_ports()))
    for (auto [a, b] : e.slots)
      for (int s = a; e.port == master_port && e.master && s <= b; ++s) out.push_back(s);
  return out;
}

int RedisCluster::replica_of(int master_port) const {
  const std::vector<int> live = node_ports();
  const std::vector<Entry> entries = topology(live);
  for (const auto& m : entries)
    for (const auto& e : entries)
      if (m.port == master_port && m.master && !e.master && e.master_id == m.id && !e.failed &&
          contains(live, e.port))
        return e.port;
  throw std::runtime_error("no live replica of " + std::to_string(master_port));
}

std::string RedisCluster::node_id(int port) const {
  Reply r = command(port, {"CLUSTER", "MYID"});
  if (!r.ok()) throw std::runtime_error("CLUSTER MYID: " + r.str);
  return r.str;
}

void RedisCluster::kill_master(int port) { node(port).process.kill_hard(); }
void RedisCluster::restart_node(int port) { node(port).process.start(); }
long RedisCluster::wait_until_ok(int timeout_ms) { return wait(false, timeout_ms); }
long RedisCluster::wait_settled(int timeout_ms) { return wait(true, timeout_ms); }

long RedisCluster::wait(bool settled, int timeout_ms) {
  return poll_until(settled ? "settled cluster" : "cluster_state:ok", timeout_ms, [&]() -> std::string {
    const std::vector<int> live = node_ports();
    std::string first;  // the first node's signature, which the others must match
    for (int port : live) {
      const std::string at = addr(port) + ": ";
      const Reply info = command(port, {"CLUSTER", "INFO"}), nodes = command(port, {"CLUSTER", "NODES"});
      if (!info.ok() || !nodes.ok()) return at + (info.ok() ? nodes.str : info.str);
      if (info["cluster_state"] != "ok") return at + "cluster_state:" + info["cluster_state"];
      if (settled && info["cluster_known_nodes"] != std::to_string(nodes_.size()))
        return at + "knows " + info["cluster_known_nodes"] + " nodes";
      const std::vector<Entry> entries = parse_nodes(nodes.str);
      const std::string sig = signature(entries, settled);
      if (!first.empty() && sig != first) return at + "nodes disagree:\n" + first + "vs\n" + sig;
      if (first.empty()) {
        first = sig;
        int covered = 0;
        for (const auto& e : entries)
          if (e.master && !e.failed && e.slot_count) {
            if (!contains(live, e.port)) return at + "slots on dead master " + addr(e.port);
            covered += e.slot_count;
          }
        if (covered != 16384) return at + std::to_string(covered) + " slots served";
      }
      const Reply replication = settled ? command(port, {"INFO", "replication"}) : Reply();
      if (replication["role"] == "slave" && replication["master_link_status"] != "up")
        return at + "replica's master link not up";
    }
    return live.empty() ? "no live node" : "";
  });
}

void RedisCluster::reshard(int from_port, int to_port, int slots) {
  wait_settled();
  redis_cli("--cluster reshard " + addr(from_port) + " --cluster-from " + node_id(from_port) +
                " --cluster-to " + node_id(to_port) + " --cluster-slots " + std::to_string(slots) +
                " --cluster-yes",
            dir_.path() + "/redis-cli.log", 300);
}

int RedisCluster::add_master() {
  wait_settled();
  const int existing = node_ports().at(0);
  const int port = start_node().port;
  try {
    redis_cli("--cluster add-node " + addr(port) + " " + addr(existing), dir_.path() + "/redis-cli.log", 60);
    wait_settled();
  } catch (...) {
    nodes_.pop_back();  // not in the cluster: the known-nodes count would never match
    throw;
  }
  return port;
}

void RedisCluster::remove_node(int port) {
  node(port);  // one of ours
  const std::vector<int> live = node_ports();
  const int other = live.at(live.at(0) == port ? 1 : 0);
  redis_cli("--cluster del-node " + addr(other) + " " + node_id(port), dir_.path() + "/redis-cli.log", 60);
  nodes_.erase(std::find_if(nodes_.begin(), nodes_.end(), [&](auto& n) { return n->port == port; }));
  wait_settled();
}

// ---------------------------------------------------------------- Sentinel

struct RedisSentinelGroup::Sentinel {
  TempDir dir;  // sentinel rewrites its config file: it must be its own, and writable
  int port = free_port();
  ServerProcess process;
  explicit Sentinel(const std::string& config)
      : process({"redis-server", dir.path() + "/sentinel.conf", "--sentinel"}, port) {
    std::ofstream(dir.path() + "/sentinel.conf")
        << "port " << port << "\ndir " << dir.path() << "\nlogfile " << dir.path() << "/sentinel.log\n"
        << config;
    process.start();
  }
};

RedisSentinelGroup::RedisSentinelGroup(const std::string& master_name, int replicas, int sentinels,
                                       int down_after_ms, const std::string& data_password,
                                       const std::string& sentinel_password)
    : name_(master_name), data_password_(data_password), sentinel_password_(sentinel_password) {
  // A replica syncs at once, not after the default 5 s wait for other replicas.
  std::string data_config = "repl-diskless-sync-delay 0\n";
  if (!data_password.empty())
    data_config += "requirepass " + data_password + "\nmasterauth " + data_password + "\n";
  data_.push_back(std::make_unique<RedisServer>(data_config));
  const std::string master = std::to_string(data_[0]->port);
  for (int i = 0; i < replicas; ++i)
    data_.push_back(std::make_unique<RedisServer>(data_config + "replicaof 127.0.0.1 " + master + "\n"));
  // The sentinels start once the replicas are in sync: their first INFO then
  // finds the replicas fit to promote (the next comes 10 s later).
  poll_until("replicas in sync", 30000, [&]() -> std::string {
    for (size_t i = 1; i < data_.size(); ++i)
      if (command(data_[i]->port, {"INFO", "replication"}, data_password_)["master_link_status"] != "up")
        return addr(data_[i]->port) + " not in sync";
    return "";
  });
  std::string config = "bind 127.0.0.1\nprotected-mode no\ndaemonize no\nsentinel resolve-hostnames no\n";
  config += "sentinel monitor " + name_ + " 127.0.0.1 " + master + " " + std::to_string(std::min(2, sentinels)) +
            "\nsentinel down-after-milliseconds " + name_ + " " + std::to_string(down_after_ms) +
            "\nsentinel failover-timeout " + name_ + " 2000\n";
  if (!data_password.empty()) config += "sentinel auth-pass " + name_ + " " + data_password + "\n";
  // A sentinel with requirepass also uses it to authenticate to the other sentinels.
  if (!sentinel_password.empty()) config += "requirepass " + sentinel_password + "\n";
  for (int i = 0; i < sentinels; ++i) sentinels_.push_back(std::make_unique<Sentinel>(config));
  wait_settled(60000);
}

RedisSentinelGroup::~RedisSentinelGroup() = default;

std::string RedisSentinelGroup::uri(const std::string& query) const {
  std::string out;
  for (int port : sentinel_ports()) out += (out.empty() ? "" : ",") + addr(port);
  return "redis+sentinel://" + out + "/" + name_ + (query.empty() ? "" : "?" + query);
}

std::vector<int> RedisSentinelGroup::sentinel_ports() const { return ports_of(sentinels_, false); }
std::vector<int> RedisSentinelGroup::live_sentinels() const { return ports_of(sentinels_, true); }
std::vector<int> RedisSentinelGroup::data_ports() const { return ports_of(data_, true); }

int RedisSentinelGroup::master_port() const {
  std::string errors;
  for (int s : live_sentinels()) {
    Reply r = command(s, {"SENTINEL", "get-master-addr-by-name", name_}, sentinel_password_);
    if (r.ok() && r.elements.size() == 2) return std::atoi(r.elements[1].str.c_str());
    errors += " " + r.str;
  }
  throw std::runtime_error("no sentinel names the master:" + errors);
}

std::vector<int> RedisSentinelGroup::replica_ports() const {
  std::vector<int> out = data_ports();
  out.erase(std::remove(out.begin(), out.end(), master_port()), out.end());
  return out;
}

RedisServer& RedisSentinelGroup::data_node(int port) const {
  for (const auto& d : data_)
    if (d->port == port) return *d;
  throw std::invalid_argument("no data node on port " + std::to_string(port));
}

ServerProcess& RedisSentinelGroup::process(int port) {
  for (const auto& s : sentinels_)
    if (s->port == port) return s->process;
  return data_node(port).process;
}

void RedisSentinelGroup::kill_master() { data_node(master_port()).process.kill_hard(); }
void RedisSentinelGroup::restart(int port) { data_node(port).restart(); }

namespace {

// The master all live sentinels name and that is a live master itself
// (ROLE), or 0 with `why` set.
int agreed_master(const std::vector<int>& sentinels, const std::vector<int>& live_data,
                  const std::string& name, const std::string& sentinel_password,
                  const std::string& data_password, std::string& why) {
  int agreed = 0;
  for (int s : sentinels) {
    Reply r = command(s, {"SENTINEL", "get-master-addr-by-name", name}, sentinel_password);
    if (!r.ok() || r.elements.size() != 2) return why = addr(s) + ": " + r.str, 0;
    const int port = std::atoi(r.elements[1].str.c_str());
    if (agreed && port != agreed) return why = "sentinels disagree on the master", 0;
    agreed = port;
  }
  if (!agreed) return why = "no live sentinel", 0;
  if (!contains(live_data, agreed)) return why = "sentinels name dead " + addr(agreed), 0;
  Reply role = command(agreed, {"ROLE"}, data_password);
  if (role.elements.empty() || role.elements[0].str != "master")
    return why = addr(agreed) + " is not (yet) a master " + role.str, 0;
  return agreed;
}

}  // namespace

long RedisSentinelGroup::wait_for_new_master(int old_port, int timeout_ms) {
  return poll_until("new master", timeout_ms, [&]() -> std::string {
    std::string why;
    const int port = agreed_master(live_sentinels(), data_ports(), name_, sentinel_password_,
                                   data_password_, why);
    return port == old_port ? "sentinels still name " + addr(old_port) : why;
  });
}

long RedisSentinelGroup::wait_settled(int timeout_ms) {
  return poll_until("settled sentinel group", timeout_ms, [&]() -> std::string {
    const std::vector<int> live = data_ports(), sentinels = live_sentinels();
    std::string why;
    const int master = agreed_master(sentinels, live, name_, sentinel_password_, data_password_, why);
    if (!master) return why;
    for (int s : sentinels) {
      const std::string at = "sentinel " + addr(s) + ": ";
      const Reply m = command(s, {"SENTINEL", "MASTER", name_}, sentinel_password_);
      if (m["flags"] != "master") return at + "master flags " + m["flags"] + m.str;
      // Sentinels never forget one another, dead or alive.
      if (m["num-other-sentinels"] != std::to_string(sentinels_.size() - 1))
        return at + "knows " + m["num-other-sentinels"] + " other sentinels";
      std::vector<int> known;
      for (const auto& r : command(s, {"SENTINEL", "REPLICAS", name_}, sentinel_password_).elements)
        if (r["flags"] == "slave") known.push_back(std::atoi(r["port"].c_str()));
      for (int port : live)
        if (port != master && !contains(known, port)) return at + "does not see replica " + addr(port) + " up";
    }
    for (int port : live) {
      const Reply r = command(port, {"INFO", "replication"}, data_password_);
      if (port != master && (r["master_port"] != std::to_string(master) || r["master_link_status"] != "up"))
        return addr(port) + " does not replicate from " + addr(master);
    }
    return "";
  });
}

void RedisSentinelGroup::failover(int timeout_ms) {
  poll_until("SENTINEL FAILOVER accepted", timeout_ms, [&]() -> std::string {
    const std::vector<int> sentinels = live_sentinels();
    if (sentinels.empty()) return "no live sentinel";
    Reply r = command(sentinels[0], {"SENTINEL", "FAILOVER", name_}, sentinel_password_);
    if (r.type == REDIS_REPLY_ERROR && r.str.rfind("INPROG", 0) != 0 && r.str.rfind("NOGOODSLAVE", 0) != 0)
      throw std::runtime_error("SENTINEL FAILOVER: " + r.str);
    return r.ok() ? "" : r.str;
  });
}

}  // namespace sessions::testing
