// A bounded, thread-safe pool of connections for stores whose client
// libraries are not thread-safe (a hiredis context, a libpq connection).
// Threads lease a connection for one call and give it back; a broken one is
// discarded and its slot reopened lazily by the next caller, which is how a
// store recovers from a server restart without being reopened.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "error.h"

namespace sessions::internal {

// Connection: a std::unique_ptr with a deleter that closes it.
template <typename Connection>
class Pool {
 public:
  class Lease {
   public:
    Lease(Pool* pool, Connection conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), conn_(std::move(other.conn_)) {
      other.pool_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->give_back(std::move(conn_));
    }
    // Empty for a fresh slot: the caller opens the connection and set()s it.
    Connection& get() { return conn_; }
    void set(Connection conn) { conn_ = std::move(conn); }
    // The connection is broken or in an unknown state: close it, free the slot.
    void discard() { conn_.reset(); }

   private:
    Pool* pool_;
    Connection conn_;
  };

  explicit Pool(size_t max_size) : max_size_(max_size) {}

  size_t max_size() const { return max_size_; }

  // Closes the idle connections; leased ones are kept by their callers.
  void clear_idle() {
    std::vector<Connection> closing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing.swap(idle_);
    }
    cv_.notify_all();
  }

  // The most recently used idle connection, or an empty lease when a slot is
  // free. Waits up to `wait` when every slot is leased, then throws
  // Errc::store_unavailable naming `what`.
  Lease acquire(std::chrono::milliseconds wait, const std::string& what) {
    std::unique_lock<std::mutex> lock(mu_);
    auto available = [&] { return !idle_.empty() || leased_ + idle_.size() < max_size_; };
    if (!cv_.wait_for(lock, wait, available))
      fail(Errc::store_unavailable, what + ": all " + std::to_string(max_size_) +
                                        " pooled connections stayed busy for " +
                                        std::to_string(wait.count()) + " ms (raise pool=)");
    ++leased_;
    if (idle_.empty()) return Lease(this, Connection());
    Connection conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }

 private:
  void give_back(Connection conn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --leased_;
      if (conn) idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }

  const size_t max_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Connection> idle_;
  size_t leased_ = 0;
};

}  // namespace sessions::internal
