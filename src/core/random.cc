#include "random.h"

#include <pthread.h>

#include <atomic>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "error.h"

namespace sessions::internal {
namespace {

// Bumped in every child after fork(); a buffer filled under another
// generation is stale.
std::atomic<unsigned> fork_generation{1};

void on_fork_child() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct RandomBuffer {
  unsigned char bytes[4096];
  size_t used = sizeof(bytes);  // empty
  unsigned generation = 0;
  ~RandomBuffer() { OPENSSL_cleanse(bytes, sizeof(bytes)); }
};

thread_local RandomBuffer buffer;

void refill() {
  static const int registered = pthread_atfork(nullptr, nullptr, on_fork_child);
  (void)registered;
  if (RAND_bytes(buffer.bytes, sizeof(buffer.bytes)) != 1) fail(Errc::internal, "RAND_bytes failed");
  buffer.used = 0;
  buffer.generation = fork_generation.load(std::memory_order_relaxed);
}

}  // namespace

void random_bytes(void* out, size_t len) {
  auto* dst = static_cast<unsigned char*>(out);
  while (len > 0) {
    if (buffer.used == sizeof(buffer.bytes) ||
        buffer.generation != fork_generation.load(std::memory_order_relaxed))
      refill();
    size_t n = std::min(len, sizeof(buffer.bytes) - buffer.used);
    std::memcpy(dst, buffer.bytes + buffer.used, n);
    buffer.used += n;  // each byte is handed out once
    dst += n;
    len -= n;
  }
}

}  // namespace sessions::internal
