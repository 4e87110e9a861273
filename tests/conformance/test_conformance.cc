// The store conformance kit (include/sessions_conformance.h) on every
// server-side store: the built-in ones on their real servers, which the
// hooks kill, restart and pause, and the example custom store on LMDB.
// (The Python example store runs it from bindings/python/tests.)
#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <string>

#include "lmdb_store.h"
#include "mongo_wire_server.h"
#include "servers.h"
#include "sessions_conformance.h"

using namespace sessions::testing;

namespace {

// Hooks as std::functions, for servers of any kind.
struct Server {
  std::function<void()> stop, start, pause, resume;
  bool persistent = false;
  size_t server_max_record = 0;
};

int call(void* user, std::function<void()> Server::*hook) {
  try {
    (static_cast<Server*>(user)->*hook)();
    return 0;
  } catch (...) {
    return 1;
  }
}

// Runs the kit and fails the test case with every line it reported.
void conforms(const std::string& uri, std::vector<const char*> options, Server* server = nullptr) {
  options.push_back(nullptr);
  sess_conformance_hooks hooks{};
  hooks.size = sizeof hooks;
  if (server) {
    hooks.user = server;
    if (server->stop) {
      hooks.stop = [](void* u) { return call(u, &Server::stop); };
      hooks.start = [](void* u) { return call(u, &Server::start); };
    }
    if (server->pause) {
      hooks.pause = [](void* u) { return call(u, &Server::pause); };
      hooks.resume = [](void* u) { return call(u, &Server::resume); };
    }
    hooks.persistent = server->persistent;
    hooks.server_max_record = server->server_max_record;
  }
  std::string lines;
  auto report = [](void* user, const char* check, int outcome, const char* detail) {
    static const char* const kOutcome[] = {"passed", "FAILED", "skipped"};
    *static_cast<std::string*>(user) += std::string(check) + ": " + kOutcome[outcome] +
                                        (*detail ? std::string(": ") + detail : "") + "\n";
  };
  int failed = sess_conformance_run(uri.c_str(), options.data(), &hooks, report, &lines);
  INFO(uri << "\n" << lines);
  CHECK(failed == 0);
  CHECK(lines.find("round_trip: passed") != std::string::npos);
}

}  // namespace

TEST_CASE("conformance: memory:") { conforms("memory:", {}); }

TEST_CASE("conformance: file:") {
  TempDir dir;
  conforms("file://" + dir.path() + "/sessions", {"fsync", "false"});
}

TEST_CASE("conformance: sqlite:") {
  TempDir dir;
  conforms("sqlite://" + dir.path() + "/sessions.db", {});
}

TEST_CASE("conformance: redis:, killed, restarted and hung") {
  RedisServer redis("appendonly yes\nappendfsync always\nproto-max-bulk-len 1mb\n");
  Server server;
  server.stop = [&] { redis.process.kill_hard(); };
  server.start = [&] { redis.restart(); };
  server.pause = [&] { redis.process.pause(); };
  server.resume = [&] { redis.process.resume(); };
  server.persistent = true;
  server.server_max_record = 1 << 20;
  conforms(redis.uri(), {"timeout_ms", "300", "connect_timeout_ms", "500"}, &server);
}

TEST_CASE("conformance: memcached:, killed, restarted and hung") {
  MemcachedServer memcached("512k");
  Server server;
  server.stop = [&] { memcached.process.kill_hard(); };
  server.start = [&] { memcached.process.start(); };
  server.pause = [&] { memcached.process.pause(); };
  server.resume = [&] { memcached.process.resume(); };
  server.server_max_record = 512 << 10;  // memcached keeps nothing across a restart
  conforms("memcached://127.0.0.1:" + std::to_string(memcached.port),
           {"timeout_ms", "300", "connect_timeout_ms", "500"}, &server);
}

TEST_CASE("conformance: postgresql:, killed, restarted and hung") {
  PostgresServer postgres;
  Server server;
  server.stop = [&] { postgres.process.kill_hard(); };
  server.start = [&] { postgres.restart(); };
  server.pause = [&] { postgres.process.pause(); };
  server.resume = [&] { postgres.process.resume(); };
  server.persistent = true;
  conforms(postgres.uri(), {"timeout_ms", "500", "connect_timeout_ms", "500"}, &server);
}

TEST_CASE("conformance: mongodb:, on the wire-protocol test server") {
  MongoWireServer mongo;
  Server server;
  server.stop = [&] { mongo.stop(); };
  server.start = [&] { mongo.start(); };
  server.pause = [&] { mongo.pause(); };
  server.resume = [&] { mongo.resume(); };
  server.persistent = true;  // it keeps its documents across stop and start
  conforms(mongo.uri(), {"timeout_ms", "500"}, &server);
}

TEST_CASE("conformance: mongodb:, on a real MongoDB", "[.][real-mongodb]") {
  // scripts/test.sh runs it when SESSIONS_TEST_MONGODB_URI names a server
  // (no hooks: the kit does not stop someone else's server).
  const char* uri = std::getenv("SESSIONS_TEST_MONGODB_URI");
  REQUIRE(uri);
  conforms(uri, {"timeout_ms", "2000"});
}

TEST_CASE("conformance: lmdb:, the example custom store") {
  static const int registered = lmdb_store_register();
  REQUIRE(registered == SESS_OK);
  TempDir dir;
  conforms("lmdb://" + dir.path() + "/lmdb", {"map_size_mb", "64"});
}
