#include "redis_router.h"

#include <algorithm>
#include <thread>

namespace sessions::internal {
namespace {

class OneServerRouter : public RedisRouter {
 public:
  OneServerRouter(std::string host, int port, const RedisLogin& login)
      : node_(std::move(host), port, login) {}
  void start() override { node_.ping(); }  // connects, authenticates, selects
  void run(std::string_view, const RedisPipeline& pipeline, RedisReplies* replies) override {
    node_.run(pipeline, replies);
  }
  const std::string& name() const override { return node_.name(); }

 private:
  RedisNode node_;
};

}  // namespace

std::unique_ptr<RedisRouter> one_server_router(std::string host, int port, const RedisLogin& login) {
  return std::make_unique<OneServerRouter>(std::move(host), port, login);
}

bool RetryDeadline::pause() {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline_) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
  std::this_thread::sleep_for(std::min(backoff_, left));
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(200));
  return true;
}

}  // namespace sessions::internal
