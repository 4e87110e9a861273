#include "request.h"

namespace sessions::internal {

void Request::reset(std::string_view cookie_header) {
  for (size_t i = 0; i < session_count_; ++i) sessions_[i]->release();
  session_count_ = 0;
  set_cookies_.clear();
  finished_ = false;
  jar_.reset(cookie_header);
}

Session& Request::session(const std::shared_ptr<Store>& store, std::string_view name) {
  if (finished_) fail(Errc::state, "the request has finished");
  for (size_t i = 0; i < session_count_; ++i) {
    Session* s = sessions_[i].get();
    if (s->name() != name) continue;
    if (s->store() != store)
      fail(Errc::invalid_argument, "session '" + std::string(name) +
                                       "' is already open in this request with another store");
    return *s;
  }
  validate_cookie_name(name);
  store->settings().cookie.validate_prefix(name);
  if (session_count_ == sessions_.size()) sessions_.push_back(std::make_unique<Session>());
  Session& session = *sessions_[session_count_];
  session.start(store, name);
  try {
    session.load(jar_);
  } catch (...) {
    session.release();
    throw;
  }
  ++session_count_;
  return session;
}

Errc Request::finish(std::string* message) {
  if (finished_) {
    *message = "the request has already finished";
    return Errc::state;
  }
  finished_ = true;
  Errc first = Errc::ok;
  for (size_t i = 0; i < session_count_; ++i) {
    Session* s = sessions_[i].get();
    try {
      s->save(&set_cookies_);
    } catch (const Error& e) {
      if (first == Errc::ok) { first = e.code(); *message = e.what(); }
    } catch (const std::bad_alloc&) {
      if (first == Errc::ok) { first = Errc::no_memory; *message = "out of memory"; }
    } catch (const std::exception& e) {
      if (first == Errc::ok) { first = Errc::internal; *message = e.what(); }
    }
    s->finish();
  }
  return first;
}

}  // namespace sessions::internal
