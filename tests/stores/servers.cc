#include "servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grp.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <pwd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace sessions::testing {
namespace {

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("cannot bind a loopback port");
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/sessions-test-XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ServerProcess::ServerProcess(std::vector<std::string> argv, int port, std::string run_as)
    : argv_(std::move(argv)), port_(port), run_as_(std::move(run_as)) {}

namespace {

// In a forked child: become `user` when running as root.
void drop_privileges(const std::string& user) {
  if (user.empty() || ::geteuid() != 0) return;
  passwd* pw = ::getpwnam(user.c_str());
  if (!pw || ::setgid(pw->pw_gid) != 0 || ::initgroups(user.c_str(), pw->pw_gid) != 0 ||
      ::setuid(pw->pw_uid) != 0)
    ::_exit(126);
}

void chown_to(const std::string& path, const std::string& user) {
  if (::geteuid() != 0) return;
  passwd* pw = ::getpwnam(user.c_str());
  if (!pw || ::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    throw std::runtime_error("cannot give " + path + " to " + user);
}

// Runs argv (as `user` when root) and waits; throws unless it exits 0.
void run_command(std::vector<std::string> argv, const std::string& user) {
  pid_t pid = ::fork();
  if (pid == 0) {
    drop_privileges(user);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(argv[0] + " failed (is it installed? scripts/deps.sh)");
}

const char* kPostgresBin = "/usr/lib/postgresql/15/bin/";

// The processes below `root`, found through /proc (PostgreSQL's backends
// each start a session of their own, so a process group does not reach them).
std::vector<pid_t> descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> parent_of;  // pid, ppid
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    pid_t ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2)
      parent_of.emplace_back(pid_t(std::stoi(name)), ppid);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> frontier = {root};
  while (!frontier.empty()) {
    pid_t parent = frontier.back();
    frontier.pop_back();
    for (const auto& [pid, ppid] : parent_of)
      if (ppid == parent) {
        out.push_back(pid);
        frontier.push_back(pid);
      }
  }
  return out;
}

// Sends sig to `root` and every process below it, children first.
void signal_tree(pid_t root, int sig) {
  for (pid_t pid : descendants(root)) ::kill(pid, sig);
  ::kill(root, sig);
}

}  // namespace

ServerProcess::~ServerProcess() {
  if (pid_ > 0) kill_hard();
}

void ServerProcess::start() {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    drop_privileges(run_as_);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!port_accepts(port_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error(argv_[0] + " exited at start (is it installed? scripts/deps.sh)");
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(argv_[0] + " did not listen on port " + std::to_string(port_));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void ServerProcess::signal_and_reap(int sig) {
  if (pid_ <= 0) return;
  signal_tree(pid_, SIGCONT);  // a paused server must run to shut down
  std::vector<pid_t> children = descendants(pid_);
  if (sig == SIGKILL) signal_tree(pid_, SIGKILL);  // every process at once, as a crash
  else ::kill(pid_, sig);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  // Children are reparented when their parent dies; wait until they are gone.
  for (pid_t child : children)
    for (int i = 0; i < 500 && ::kill(child, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  pid_ = -1;
}

void ServerProcess::kill_hard() { signal_and_reap(SIGKILL); }
// SIGINT: a fast shutdown (PostgreSQL waits for its clients on SIGTERM).
void ServerProcess::stop() { signal_and_reap(SIGINT); }
void ServerProcess::pause() {
  signal_tree(pid_, SIGSTOP);
  // The signal is asynchronous: a thread running on the other core could
  // still answer a request. Wait until every thread of the server is stopped.
  const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
  for (int i = 0; i < 1000; ++i) {
    bool all_stopped = true;
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
      std::ifstream stat(task.path() / "stat");
      std::string line;
      std::getline(stat, line);
      size_t close = line.rfind(')');
      if (close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'T' &&
          line[close + 2] != 't')
        all_stopped = false;
    }
    if (all_stopped) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}
void ServerProcess::resume() { signal_tree(pid_, SIGCONT); }

RedisServer::RedisServer(const std::string& extra)
    : process({"redis-server", dir.path() + "/redis.conf"}, port) {
  std::ofstream conf(dir.path() + "/redis.conf");
  conf << "bind 127.0.0.1\nport " << port << "\ndir " << dir.path()
       << "\nsave \"\"\nappendonly no\ndaemonize no\nlogfile " << dir.path()
       << "/redis.log\nunixsocket " << dir.path() << "/redis.sock\nunixsocketperm 700\n"
       << extra;
  conf.close();
  process.start();
}

std::string RedisServer::uri(const std::string& query) const {
  return "redis://127.0.0.1:" + std::to_string(port) + (query.empty() ? "" : "?" + query);
}

void RedisServer::restart() {
  process.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    redisContext* c = redisConnect("127.0.0.1", port);
    auto* reply = c && !c->err ? static_cast<redisReply*>(redisCommand(c, "PING")) : nullptr;
    bool ready = reply && reply->type == REDIS_REPLY_STATUS;
    // Any other answer (an error reply of a password-protected server) is fine too.
    if (reply && reply->type == REDIS_REPLY_ERROR && std::string(reply->str).rfind("LOADING", 0) != 0)
      ready = true;
    if (reply) freeReplyObject(reply);
    if (c) redisFree(c);
    if (ready) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("redis-server did not finish loading");
}

MemcachedServer::MemcachedServer(const std::string& item_size_max)
    : process(
          [&] {
            std::vector<std::string> argv = {"memcached", "-l", "127.0.0.1", "-p",
                                             std::to_string(port), "-U", "0", "-m", "64",
                                             "-I", item_size_max};
            if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "root"});
            return argv;
          }(),
          port) {
  process.start();
}

namespace {

// The initdb'ed cluster every PostgresServer copies (initdb takes seconds).
const std::string& postgres_template() {
  static TempDir dir;
  static const std::string data = [] {
    const std::string path = dir.path() + "/data";
    chown_to(dir.path(), "postgres");
    run_command({std::string(kPostgresBin) + "initdb", "-D", path, "-U", "sessions",
                 "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"},
                "postgres");
    return path;
  }();
  return data;
}

}  // namespace

PostgresServer::PostgresServer()
    : process({std::string(kPostgresBin) + "postgres", "-D", dir.path() + "/data", "-p",
               std::to_string(port), "-k", dir.path(), "-c", "listen_addresses=127.0.0.1",
               "-c", "max_connections=200", "-c", "fsync=on"},
              port, "postgres") {
  chown_to(dir.path(), "postgres");
  run_command({"cp", "-a", postgres_template(), dir.path() + "/data"}, "postgres");
  restart();
}

std::string PostgresServer::uri(const std::string& query) const {
  return "postgresql://sessions@127.0.0.1:" + std::to_string(port) + "/postgres" +
         (query.empty() ? "" : "?" + query);
}

void PostgresServer::restart() {
  process.start();
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port) +
                               " user=sessions dbname=postgres connect_timeout=2";
  for (int i = 0; i < 3000; ++i) {
    if (PQping(conninfo.c_str()) == PQPING_OK) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("postgres did not accept connections");
}

}  // namespace sessions::testing
