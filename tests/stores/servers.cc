#include "servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <chrono>
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

ServerProcess::ServerProcess(std::vector<std::string> argv, int port)
    : argv_(std::move(argv)), port_(port) {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) kill_hard();
}

void ServerProcess::start() {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
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
  ::kill(pid_, SIGCONT);  // a paused server must run to die on SIGTERM
  ::kill(pid_, sig);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void ServerProcess::kill_hard() { signal_and_reap(SIGKILL); }
void ServerProcess::stop() { signal_and_reap(SIGTERM); }
void ServerProcess::pause() { ::kill(pid_, SIGSTOP); }
void ServerProcess::resume() { ::kill(pid_, SIGCONT); }

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

}  // namespace sessions::testing
