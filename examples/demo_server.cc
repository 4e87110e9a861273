// The libsessions demo: a JSON web server that keeps its users in sessions.
// It links only the public API (sessions.hpp over libsessions.so).
//
//   SESSIONS_SECRET=... demo_server [--store URI] [--port N]
//
// Routes: /login?user=NAME, /profile, /logout, /incr, /hello, /multi, /flash,
// /cart, /sessions (this user's sessions), POST /logout-others, and /form
// (an HTML form whose POST requires its CSRF token).
#include <httplib.h>

#include <openssl/rand.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "lmdb_store.h"
#include "sessions.hpp"

namespace {

using nlohmann::json;

// The longest request body the demo reads (a flash message, a cart).
constexpr size_t kMaxBody = 64 * 1024;

struct Options {
  std::string store = "cookie:";
  std::string host = "127.0.0.1";
  int port = 8080;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--store URI] [--host ADDR] [--port N]\n"
               "  --store URI   session store (default cookie:; any built-in URI, or\n"
               "                lmdb:///dir, the example store in examples/lmdb_store)\n"
               "  --port N      port to listen on (default 8080)\n"
               "  SESSIONS_SECRET  secret of at least 32 bytes; several, comma-separated, rotate\n",
               argv0);
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--store" && i + 1 < argc) o.store = argv[++i];
    else if (arg == "--host" && i + 1 < argc) o.host = argv[++i];
    else if (arg == "--port" && i + 1 < argc) o.port = std::atoi(argv[++i]);
    else usage(argv[0]);
  }
  return o;
}

sessions::Config make_config() {
  sessions::Config config;
  const char* env = std::getenv("SESSIONS_SECRET");
  if (env && *env) {
    std::string secrets = env;  // "new,old": the first seals, all open
    for (size_t start = 0; start <= secrets.size();) {
      size_t comma = secrets.find(',', start);
      if (comma == std::string::npos) comma = secrets.size();
      config.add_secret(secrets.substr(start, comma - start));
      start = comma + 1;
    }
  } else {
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1) throw std::runtime_error("RAND_bytes failed");
    config.add_secret(std::string_view(reinterpret_cast<char*>(key), sizeof key));
    std::fprintf(stderr,
                 "warning: SESSIONS_SECRET is not set; using a random development key. "
                 "Sessions will not survive a restart.\n");
  }
  return config;
}

// The demo's user table: a stable numeric ID per user name.
class Users {
 public:
  int64_t id_for(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = ids_.emplace(name, int64_t(ids_.size()) + 1);
    return it->second;
  }

 private:
  std::mutex mu_;
  std::map<std::string, int64_t> ids_;
};

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// Runs a handler inside a session request: Cookie: in, Set-Cookie: out.
using Handler = std::function<void(const httplib::Request&, httplib::Response&, sessions::Request&)>;

httplib::Server::Handler with_sessions(Handler handler) {
  return [handler](const httplib::Request& req, httplib::Response& res) {
    std::string cookies;
    for (auto [it, end] = req.headers.equal_range("Cookie"); it != end; ++it)
      cookies += (cookies.empty() ? "" : "; ") + it->second;
    try {
      sessions::Request session_request(cookies);
      handler(req, res, session_request);
      try {
        session_request.finish();
      } catch (const sessions::Error& e) {
        std::fprintf(stderr, "%s %s: session not saved: %s\n", req.method.c_str(),
                     req.path.c_str(), e.what());
        reply(res, e.code() == SESS_E_STORE_UNAVAILABLE ? 503 : 500,
              {{"error", "session not saved"}});
      }
      for (const auto& value : session_request.set_cookies()) res.set_header("Set-Cookie", value);
    } catch (const sessions::Error& e) {
      std::fprintf(stderr, "%s %s: %s\n", req.method.c_str(), req.path.c_str(), e.what());
      int status = e.code() == SESS_E_STORE_UNAVAILABLE ? 503
                   : e.code() == SESS_E_HEADER_TOO_LARGE ? 431
                                                         : 500;
      reply(res, status, {{"error", e.what()}});
    }
  };
}

// The body of a POST registered with a content reader (up to kMaxBody and a
// byte more, so that a longer one can be refused); empty when none was sent.
std::string read_body(const httplib::Request& req, const httplib::ContentReader& content) {
  std::string body;
  if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding"))
    content([&](const char* data, size_t len) {
      body.append(data, len);
      return body.size() <= kMaxBody;
    });
  return body;
}

// A session for the handler; logs why a cookie was not accepted.
sessions::Session open_session(sessions::Request& r, const sessions::Store& store,
                               const std::string& name) {
  sessions::Session s = r.session(store, name);
  if (s.status() != SESS_STATUS_VALID && s.status() != SESS_STATUS_NEW)
    std::fprintf(stderr, "session %s: cookie refused (%s); starting a new session\n", name.c_str(),
                 s.status_name().c_str());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_args(argc, argv);
  std::optional<sessions::Store> opened;
  // A store of one's own, registered like the built-in ones (lmdb:).
  if (lmdb_store_register() != SESS_OK) {
    std::fprintf(stderr, "cannot register lmdb: %s\n", sess_last_error());
    return 1;
  }
  try {
    sessions::Config config = make_config();
    // Big sessions on cookie: are chunked, and their chunks come back in one
    // Cookie header line, which cpp-httplib (as Debian builds it, like
    // nginx's and Apache's defaults) refuses past 8 KB. Compression keeps a
    // 6,000-byte flash or a large cart within that; the demo's sessions hold
    // no secret beside what a user types, which is when compressing a
    // cookie is safe (docs/stores.md#compression-compress). An explicit
    // compress= in the URI wins.
    if (options.store.rfind("cookie:", 0) == 0 && options.store.find("compress=") == std::string::npos)
      config.set("compress", "auto");
    // "Log out my other devices" on cookie: needs a revocation store. The
    // demo is one process, so its own memory will do; processes that share
    // cookies share one instead (revocation=redis://...).
    if (options.store.rfind("cookie:", 0) == 0 &&
        options.store.find("revocation=") == std::string::npos)
      config.set("revocation", "memory:");
    opened.emplace(sessions::Store::open(options.store, config));
  } catch (const sessions::Error& e) {
    std::fprintf(stderr, "cannot open store %s: %s\n", options.store.c_str(), e.what());
    return 1;
  }
  const sessions::Store& store = *opened;
  Users users;
  httplib::Server server;

  server.Get("/login", with_sessions([&](const auto& req, auto& res, auto& r) {
    std::string user = req.get_param_value("user");
    if (user.empty()) return reply(res, 400, {{"error", "missing ?user="}});
    auto s = open_session(r, store, "mysession");
    s.regenerate_id();  // a new ID at every privilege change
    int64_t id = users.id_for(user);
    s.set_int("user_id", id);
    s.set_str("username", user);
    // Who the session belongs to, so that /sessions can list and end them,
    // with the device it came from for the listing.
    s.set_principal("user:" + std::to_string(id));
    try {
      s.set_metadata("user_agent", req.get_header_value("User-Agent").substr(0, 200));
    } catch (const sessions::Error&) {
      // not UTF-8: listed without it
    }
    reply(res, 200, {{"user_id", id}, {"username", user}});
  }));

  server.Get("/profile", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    auto id = s.get_int("user_id");
    if (!id) return reply(res, 401, {{"error", "Unauthorized"}});
    reply(res, 200, {{"user_id", *id}, {"username", s.get_str("username").value_or("")}});
  }));

  server.Get("/logout", with_sessions([&](const auto&, auto& res, auto& r) {
    open_session(r, store, "mysession").destroy();
    reply(res, 200, {{"logged_out", true}});
  }));

  server.Get("/incr", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    auto count = s.get_int("count");
    int64_t next = count ? *count + 1 : 0;
    s.set_int("count", next);
    reply(res, 200, {{"count", next}});
  }));

  server.Get("/hello", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    if (s.get_str("hello") != "world") s.set_str("hello", "world");
    reply(res, 200, {{"hello", *s.get_str("hello")}});
  }));

  server.Get("/multi", with_sessions([&](const auto&, auto& res, auto& r) {
    auto a = open_session(r, store, "a");
    auto b = open_session(r, store, "b");
    if (a.get_str("hello") != "world!") a.set_str("hello", "world!");
    if (b.get_str("hello") != "world?") b.set_str("hello", "world?");
    reply(res, 200, {{"a", *a.get_str("hello")}, {"b", *b.get_str("hello")}});
  }));

  // The message is ?msg=, or the request body (a long one: a 6,000-byte
  // flash on cookie: spans chunked cookies). Registered with a content
  // reader, the route runs before cpp-httplib reads a body, which it would
  // refuse (400) for a POST with neither body nor Content-Length, as
  // `curl -X POST` sends it.
  server.Post("/flash", [&](const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& content) {
    const std::string body = read_body(req, content);
    with_sessions([&](const auto&, auto& res, auto& r) {
      std::string msg = req.has_param("msg") ? req.get_param_value("msg") : body;
      if (msg.empty()) return reply(res, 400, {{"error", "missing ?msg= or a body"}});
      if (msg.size() > kMaxBody) return reply(res, 413, {{"error", "message too long"}});
      open_session(r, store, "mysession").add_flash(msg);
      reply(res, 200, {{"added", msg.size() > 80 ? std::to_string(msg.size()) + " bytes" : msg}});
    })(req, res);
  });

  server.Get("/flash", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    reply(res, 200, {{"flashes", json::parse(s.flashes_json())}});
  }));

  // A shopping cart: {"sku": quantity, ...} in the session. POST /cart with
  // ?sku=&qty= (qty=0 removes) or a JSON object of them in the body; a big
  // cart outgrows one cookie on cookie: and is chunked.
  server.Post("/cart", [&](const httplib::Request& req, httplib::Response& res,
                           const httplib::ContentReader& content) {
    const std::string body = read_body(req, content);
    with_sessions([&](const auto&, auto& res, auto& r) {
      json changes = json::object();
      if (req.has_param("sku")) {
        changes[req.get_param_value("sku")] = std::atoll(req.get_param_value("qty").c_str());
      } else {
        changes = json::parse(body, nullptr, /*allow_exceptions=*/false);
        if (!changes.is_object()) return reply(res, 400, {{"error", "expected ?sku=&qty= or a JSON object"}});
      }
      auto s = open_session(r, store, "mysession");
      json cart = json::parse(s.get_json("cart").value_or("{}"));
      for (const auto& [sku, qty] : changes.items()) {
        const int64_t n = qty.is_number_integer() ? static_cast<int64_t>(qty) : -1;
        if (n < 0) return reply(res, 400, {{"error", "quantities are integers >= 0"}});
        if (n == 0) cart.erase(sku);
        else cart[sku] = n;
      }
      s.set_json("cart", cart.dump());
      reply(res, 200, {{"items", cart.size()}});
    })(req, res);
  });

  server.Get("/cart", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    json cart = json::parse(s.get_json("cart").value_or("{}"));
    reply(res, 200, {{"items", cart.size()}, {"cart", cart}});
  }));

  // This user's sessions, most recent first; "current" marks this one.
  server.Get("/sessions", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    if (s.principal().empty()) return reply(res, 401, {{"error", "Unauthorized"}});
    try {
      json list = json::array();
      for (const auto& info : store.list_sessions(s.principal()))
        list.push_back({{"id", info.handle},
                        {"created", info.created},
                        {"last_seen", info.last_seen},
                        {"metadata", json::parse(info.metadata_json)},
                        {"current", info.handle == s.handle()}});
      reply(res, 200, {{"sessions", list}});
    } catch (const sessions::Error& e) {
      if (e.code() != SESS_E_UNSUPPORTED) throw;
      reply(res, 501, {{"error", "this store cannot list sessions (it revokes by stamps)"}});
    }
  }));

  // "Log out my other devices": every session of this user but this one.
  server.Post("/logout-others", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    if (s.principal().empty()) return reply(res, 401, {{"error", "Unauthorized"}});
    const int64_t ended = store.end_sessions(s.principal(), s.get());
    reply(res, 200, {{"ended", ended < 0 ? json("all others") : json(ended)}});
  }));

  // A form carrying its CSRF token; its POST is refused without it. The
  // token may also come in an X-CSRF-Token header (for scripts).
  server.Get("/form", with_sessions([&](const auto&, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    res.set_content("<!doctype html><form method=\"post\" action=\"/form\">"
                    "<input type=\"hidden\" name=\"csrf_token\" value=\"" + s.csrf_token() +
                        "\"><input name=\"note\"><button>Save</button></form>\n",
                    "text/html");
  }));

  server.Post("/form", with_sessions([&](const auto& req, auto& res, auto& r) {
    auto s = open_session(r, store, "mysession");
    const std::string token = req.has_param("csrf_token") ? req.get_param_value("csrf_token")
                                                          : req.get_header_value("X-CSRF-Token");
    if (!s.verify_csrf(token)) return reply(res, 403, {{"error", "CSRF token missing or invalid"}});
    s.set_str("note", req.get_param_value("note"));
    reply(res, 200, {{"note", req.get_param_value("note")}});
  }));

  if (!server.bind_to_port(options.host.c_str(), options.port)) {
    std::fprintf(stderr, "cannot listen on %s:%d\n", options.host.c_str(), options.port);
    return 1;
  }
  std::printf("libsessions %s demo listening on http://%s:%d (store %s)\n", sess_version_string(),
              options.host.c_str(), options.port, options.store.c_str());
  std::fflush(stdout);
  server.listen_after_bind();
  return 0;
}
