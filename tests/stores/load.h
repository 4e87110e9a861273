// Request cycles from several threads while a test breaks the servers
// under them (kills a master, reshards, fails over), with the accounting
// the failover tests need: every acknowledged save, and every failed
// request with when it failed, so that a test can check that nothing
// acknowledged was lost and that requests failed only inside a window.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace sessions::testing {

class CycleLoad {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts `threads` threads. Each runs browsers of five requests: a first
  // that logs in (a value, a principal, regenerate_id: a moved record),
  // then four that save a new value; every request reads the last value
  // back and counts it lost when it is neither the last one acknowledged
  // nor one of a request that failed since (which may have been written).
  CycleLoad(std::shared_ptr<Store> store, int threads);
  ~CycleLoad();  // stop()

  void stop();  // and join

  size_t acknowledged() const { return acknowledged_; }
  // The failed requests: when, and the first message.
  std::vector<Clock::time_point> failures() const;
  std::string first_failure() const;
  // Reads back every browser's last acknowledged value: how many are not there.
  size_t lost_after_reload() const;
  // Values a later request of the same browser did not find.
  size_t lost_in_flight() const { return lost_in_flight_; }

 private:
  void run(int thread);

  std::shared_ptr<Store> store_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> acknowledged_{0}, lost_in_flight_{0};
  mutable std::mutex mu_;
  std::vector<Clock::time_point> failures_;
  std::string first_failure_;
  // Each browser's jar, and the values its session may hold (load.cc).
  std::vector<std::pair<std::string, std::vector<int64_t>>> last_acknowledged_;
  std::vector<std::thread> threads_;
};

}  // namespace sessions::testing
