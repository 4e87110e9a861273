// The MongoDB wire-protocol test server as a program, for the end-to-end
// test: mongo_wire_server PORT (runs until killed).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "mongo_wire_server.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mongo_wire_server PORT\n");
    return 2;
  }
  sessions::testing::MongoWireServer server(std::atoi(argv[1]));
  std::printf("listening on 127.0.0.1:%d\n", server.port());
  std::fflush(stdout);
  while (true) ::pause();
}
