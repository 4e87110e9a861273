#include "principals.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "principals.h"
#include "session.h"

namespace sessions::testing {
namespace {

void login(Fixture& f, Browser& browser, const std::string& who, const std::string& agent) {
  Errc rc = browser.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.regenerate_id();
    s.set_principal(who);
    std::string_view ua(agent);
    s.set_metadata("user_agent", &ua);
    s.set("cart", Value(int64_t(agent.size())));
  });
  REQUIRE(rc == Errc::ok);
}

int status_of(Fixture& f, Browser& browser) {
  int status = -1;
  REQUIRE(browser.request([&](Request& r) { status = r.session(f.store, "sid").status(); }) ==
          Errc::ok);
  return status;
}

std::string handle_of(Fixture& f, Browser& browser) {
  std::string handle;
  browser.request([&](Request& r) { r.session(f.store, "sid").handle(&handle); });
  return handle;
}

bool revokes_by_stamps(const Fixture& f) { return f.store->revocations() != nullptr; }

}  // namespace

void check_principals(const std::string& uri, OptionList options) {
  Fixture f(uri, options);
  const bool stamps = revokes_by_stamps(f);
  const int ended_status = stamps ? SESS_STATUS_REVOKED : SESS_STATUS_UNKNOWN_ID;
  Browser a, b, c, other, anonymous;
  login(f, a, "user:42", "phone");
  f.now += 1;
  login(f, b, "user:42", "laptop");
  f.now += 1;
  login(f, c, "user:42", "tablet");
  login(f, other, "user:7", "desk");
  anonymous.request([&](Request& r) { r.session(f.store, "sid").set("n", Value(1)); });
  f.now += 1;

  if (!stamps) {
    std::vector<SessionInfo> listed = list_sessions(*f.store, "user:42");
    REQUIRE(listed.size() == 3);
    // Most recently seen first, each with its metadata and its handle.
    CHECK(listed[0].metadata == decltype(listed[0].metadata){{"user_agent", "tablet"}});
    CHECK(listed[2].metadata == decltype(listed[2].metadata){{"user_agent", "phone"}});
    CHECK(listed[0].last_seen > listed[2].last_seen);
    CHECK(listed[2].handle == handle_of(f, a));
    CHECK(listed[2].handle.size() == 22);
    CHECK(list_sessions(*f.store, "user:7").size() == 1);
    CHECK(list_sessions(*f.store, "user:404").empty());
  } else {
    CHECK_THROWS_AS(list_sessions(*f.store, "user:42"), Error);
  }

  // "Log out my other devices", from the phone.
  int64_t ended = 0;
  REQUIRE(a.request([&](Request& r) {
    ended = end_sessions(*f.store, "user:42", &r.session(f.store, "sid"));
  }) == Errc::ok);
  CHECK(ended == (stamps ? -1 : 2));
  CHECK(status_of(f, a) == SESS_STATUS_VALID);
  CHECK(status_of(f, b) == ended_status);
  CHECK(status_of(f, c) == ended_status);
  CHECK(status_of(f, other) == SESS_STATUS_VALID);
  CHECK(status_of(f, anonymous) == SESS_STATUS_VALID);

  // A login after the end is unaffected.
  f.now += 1;
  Browser d;
  login(f, d, "user:42", "new phone");
  CHECK(status_of(f, d) == SESS_STATUS_VALID);

  if (!stamps) {
    CHECK(list_sessions(*f.store, "user:42").size() == 2);
    // Ending one session by the handle an account page shows.
    CHECK(end_session(*f.store, "user:42", handle_of(f, d)));
    CHECK_FALSE(end_session(*f.store, "user:42", "AAAAAAAAAAAAAAAAAAAAAA"));
    CHECK_FALSE(end_session(*f.store, "user:7", handle_of(f, a)));  // not that principal's
    CHECK(status_of(f, d) == ended_status);
    CHECK(status_of(f, a) == SESS_STATUS_VALID);
  } else {
    CHECK_THROWS_AS(end_session(*f.store, "user:42", handle_of(f, d)), Error);
  }

  // A principal cleared (logout without destroy) leaves the listing.
  f.now += 1;
  a.request([&](Request& r) { r.session(f.store, "sid").set_principal(""); });
  if (!stamps) CHECK(list_sessions(*f.store, "user:42").empty());
  CHECK(end_sessions(*f.store, "user:42", nullptr) == (stamps ? -1 : 0));
  CHECK(status_of(f, a) == SESS_STATUS_VALID);  // no longer user:42's

  // The admin's end: every session of user:7.
  CHECK(end_sessions(*f.store, "user:7", nullptr) == (stamps ? -1 : 1));
  CHECK(status_of(f, other) == ended_status);
}

void check_principals_across_processes(const std::string& uri, OptionList options) {
  Fixture f(uri, options);
  const bool stamps = revokes_by_stamps(f);
  Browser a, b, c;
  login(f, a, "user:42", "phone");
  login(f, b, "user:42", "laptop");
  login(f, c, "user:42", "tablet");
  f.now += 1;
  CHECK(status_of(f, b) == SESS_STATUS_VALID);  // cached "no stamp" in this process

  const int64_t now = f.now;
  const std::string keep_jar = a.jar;
  // The kept session's Set-Cookie comes back through a pipe: on cookie: it
  // carries the session's new authentication time.
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  // A store with a background thread (file:, sqlite: collectors) is closed
  // before the fork: a child inherits no thread (ThreadSanitizer refuses
  // threads started after a multi-threaded fork). A store that revokes by
  // stamps is kept: its cache is what the check is about, and none of them
  // runs a thread.
  if (!stamps) f.store.reset();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    int code = 0;
    try {
      Fixture g(uri, options);
      g.now = now;
      if (!stamps && list_sessions(*g.store, "user:42").size() != 3) code = 2;
      Request r(keep_jar);
      int64_t ended = end_sessions(*g.store, "user:42", &r.session(g.store, "sid"));
      std::string message;
      if (r.finish(&message) != Errc::ok) code = 3;
      if (ended != (stamps ? -1 : 2)) code = 4;
      std::string lines;
      for (size_t i = 0; i < r.set_cookie_count(); ++i) lines += r.set_cookie(i) + "\n";
      if (::write(pipe_fds[1], lines.data(), lines.size()) != ssize_t(lines.size())) code = 6;
    } catch (...) {
      code = 5;
    }
    ::_exit(code);
  }
  ::close(pipe_fds[1]);
  std::string lines;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) lines.append(buffer, size_t(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  for (size_t start = 0, end; (end = lines.find('\n', start)) != std::string::npos; start = end + 1)
    a.keep(lines.substr(start, end - start));
  if (!stamps) {
    Fixture reopened(uri, options);
    f.store = reopened.store;
    f.store->set_clock([&f] { return f.now; });
  }

  if (stamps) {
    // Another process's stamp is seen once this process's cached copy is
    // older than revocation_cache (5 seconds by default), not before.
    CHECK(status_of(f, c) == SESS_STATUS_VALID);
    f.now += f.store->settings().revocation_cache;
  }
  const int ended_status = stamps ? SESS_STATUS_REVOKED : SESS_STATUS_UNKNOWN_ID;
  CHECK(status_of(f, a) == SESS_STATUS_VALID);
  CHECK(status_of(f, b) == ended_status);
  CHECK(status_of(f, c) == ended_status);
}

}  // namespace sessions::testing
