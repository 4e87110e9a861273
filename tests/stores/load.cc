#include "load.h"

namespace sessions::testing {
namespace {

bool holds_one_of(const Value* v, const std::vector<int64_t>& values) {
  for (int64_t value : values)
    if (v && *v == Value(value)) return true;
  return false;
}

}  // namespace

CycleLoad::CycleLoad(std::shared_ptr<Store> store, int threads) : store_(std::move(store)) {
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { run(t); });
}

CycleLoad::~CycleLoad() { stop(); }

void CycleLoad::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::vector<CycleLoad::Clock::time_point> CycleLoad::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

std::string CycleLoad::first_failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_failure_;
}

void CycleLoad::run(int thread) {
  for (int64_t browser = 0; !stop_; ++browser) {
    Browser b;
    // What the store may hold now: the last acknowledged value, then the
    // values of the requests that failed since (a failed save may have
    // been written before its reply was lost). Empty before the first.
    std::vector<int64_t> possible;
    for (int i = 0; i < 5 && !stop_; ++i) {
      const int64_t value = (int64_t(thread) << 40) + browser * 8 + i;
      Errc rc;
      std::string message;
      try {
        Request r(b.jar);
        Session& s = r.session(store_, "sid");
        const Value* seen = s.get("v");
        if (!possible.empty() && !holds_one_of(seen, possible)) ++lost_in_flight_;
        s.set("v", Value(value));
        if (i == 0) {
          s.set_principal("user-" + std::to_string(thread));
          s.regenerate_id();
        }
        rc = r.finish(&message);
        if (rc == Errc::ok)
          for (size_t k = 0; k < r.set_cookie_count(); ++k) b.keep(r.set_cookie(k));
      } catch (const Error& e) {
        rc = e.code();
        message = e.what();
      }
      if (rc == Errc::ok) {
        possible = {value};
        ++acknowledged_;
        continue;
      }
      if (!possible.empty()) possible.push_back(value);
      {
        std::lock_guard<std::mutex> lock(mu_);
        failures_.push_back(Clock::now());
        if (first_failure_.empty()) first_failure_ = message;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!possible.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      last_acknowledged_.emplace_back(b.jar, std::move(possible));
    }
  }
}

size_t CycleLoad::lost_after_reload() const {
  std::vector<std::pair<std::string, std::vector<int64_t>>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = last_acknowledged_;
  }
  size_t lost = 0;
  for (const auto& [jar, possible] : all) {
    Request r(jar);
    if (!holds_one_of(r.session(store_, "sid").get("v"), possible)) ++lost;
    std::string message;
    r.finish(&message);
  }
  return lost;
}

}  // namespace sessions::testing
