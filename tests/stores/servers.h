// Real servers for the store tests: redis-server and memcached from Debian,
// started on a free 127.0.0.1 port in a temporary directory, killed,
// paused and restarted on the same port by the tests, stopped at the end.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sessions::testing {

int free_port();

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ServerProcess {
 public:
  // argv[0] is the program; the server must listen on 127.0.0.1:port.
  // run_as: a user to run it as when the tests run as root (PostgreSQL
  // refuses root).
  ServerProcess(std::vector<std::string> argv, int port, std::string run_as = "");
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  void start();       // and wait until the port accepts connections
  void kill_hard();   // SIGKILL and reap: no shutdown work at all
  void stop();        // a clean, fast shutdown (SIGINT) and reap
  void pause();       // SIGSTOP: connections hang, as on an overloaded host
  void resume();      // SIGCONT
  bool running() const { return pid_ > 0; }

 private:
  void signal_and_reap(int sig);
  std::vector<std::string> argv_;
  int port_;
  std::string run_as_;
  pid_t pid_ = -1;  // also its process group: signals reach its children
};

// redis-server with a config file written into dir; `extra` is appended to
// it (e.g. "appendonly yes\nappendfsync always\n").
struct RedisServer {
  TempDir dir;
  int port = free_port();
  ServerProcess process;
  explicit RedisServer(const std::string& extra = "");
  std::string uri(const std::string& query = "") const;
  // Starts it again on the same port and waits until it has loaded its
  // append-only file (until then Redis answers LOADING).
  void restart();
};

struct MemcachedServer {
  int port = free_port();
  ServerProcess process;
  // item_size_max: memcached's -I (values larger are refused).
  explicit MemcachedServer(const std::string& item_size_max = "1m");
};

// A PostgreSQL cluster of its own: initdb'ed once per test process into a
// template (trust authentication for user "sessions" on 127.0.0.1), copied
// for each server, run as user postgres when the tests run as root.
struct PostgresServer {
  TempDir dir;
  int port = free_port();
  ServerProcess process;
  PostgresServer();
  std::string uri(const std::string& query = "") const;
  // Starts it again on the same port and waits until it accepts queries.
  void restart();
};

}  // namespace sessions::testing
