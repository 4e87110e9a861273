// A background thread that runs one task every interval until destroyed:
// how stores remove expired records without making any request wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace sessions::internal {

class Collector {
 public:
  Collector() = default;
  ~Collector() { stop(); }
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Runs task() every `interval`, first after one interval. Exceptions from
  // the task are swallowed: a failed pass is retried at the next interval.
  void start(std::chrono::milliseconds interval, std::function<void()> task) {
    thread_ = std::thread([this, interval, task = std::move(task)] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
        lock.unlock();
        try {
          task();
        } catch (...) {
        }
        lock.lock();
      }
    });
  }

  // Stops and joins the thread (also when a pass is running: after it ends).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sessions::internal
