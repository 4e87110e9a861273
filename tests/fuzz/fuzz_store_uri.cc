// sess_store_check (the C ABI, compiled in) on arbitrary store URIs and
// options: what nginx's master and sess_store_open validate before any
// server is dialled.
//
// Input: the first line is the URI; every further line is `name=value`, set
// with sess_config_set, or `secret:<bytes>`, added with
// sess_config_add_secret (without such a line the harnesses' fixed secret is
// added). Every result is one the documentation allows, with a message on
// failure, and the same when checked twice. sess_store_check "dials no
// server, touches no file and starts no thread": mkdir, socket, connect and
// getaddrinfo are interposed and abort if called during the check, the
// thread count must not change and a file: or sqlite: path that did not
// exist must still not exist. For cookie: and memory:, which open without
// side effects, sess_store_open must agree with the check.
#include <dirent.h>
#include <dlfcn.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <mongoc/mongoc.h>

#include "fuzz_common.h"
#include "options.h"
#include "sessions.h"

using fuzz::escape;

namespace {

bool in_check = false;
std::string checked_uri;

void side_effect(const char* what, const char* detail) {
  if (!in_check) return;
  in_check = false;
  FUZZ_CHECK(false, std::string("sess_store_check called ") + what + "(" + (detail ? detail : "") +
                        ") for " + escape(checked_uri));
}

template <typename F>
F real(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (!f) std::abort();
  return reinterpret_cast<F>(f);
}

}  // namespace

// Interposed for the whole harness: outside a check they pass through. Default
// visibility (the build hides symbols) so the shared libraries bind to them.
#define INTERPOSED extern "C" __attribute__((visibility("default")))
INTERPOSED int mkdir(const char* path, mode_t mode) noexcept {
  side_effect("mkdir", path);
  static auto f = real<int (*)(const char*, mode_t)>("mkdir");
  return f(path, mode);
}
INTERPOSED int socket(int domain, int type, int protocol) noexcept {
  side_effect("socket", nullptr);
  static auto f = real<int (*)(int, int, int)>("socket");
  return f(domain, type, protocol);
}
INTERPOSED int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  side_effect("connect", nullptr);
  static auto f = real<int (*)(int, const struct sockaddr*, socklen_t)>("connect");
  return f(fd, addr, len);
}
INTERPOSED int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
  side_effect("getaddrinfo", node);
  static auto f = real<int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**)>(
      "getaddrinfo");
  return f(node, service, hints, res);
}

namespace {

size_t thread_count() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (struct dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

std::string lower_scheme(std::string_view uri) {
  std::string out;
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos) return out;
  for (char c : uri.substr(0, colon)) out.push_back(char(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

// The path a file: or sqlite: URI names, when it parses.
std::string named_path(const std::string& uri, const std::string& scheme) {
  if (scheme != "file" && scheme != "sqlite") return "";
  try {
    std::string rest = sessions::internal::parse_uri(uri).rest;
    if (rest.rfind("//", 0) == 0) rest.erase(0, 2);
    return rest.find('\0') == std::string::npos ? rest : "";
  } catch (const sessions::internal::Error&) {
    return "";
  }
}

bool exists(const std::string& path) {
  struct stat st;
  return !path.empty() && lstat(path.c_str(), &st) == 0;
}

bool allowed_check_result(int rc) {
  return rc == SESS_OK || rc == SESS_E_BAD_URI || rc == SESS_E_BAD_OPTION || rc == SESS_E_BAD_SECRET ||
         rc == SESS_E_UNSUPPORTED;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mongoc_log_set_handler(nullptr, nullptr);  // the driver logs every URI it refuses
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  while (true) {
    size_t nl = input.find('\n');
    lines.emplace_back(input.substr(0, nl));
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
  }
  const std::string uri = lines[0].c_str();  // the C ABI sees up to the first NUL

  sess_config* config = nullptr;
  FUZZ_CHECK(sess_config_new(&config) == SESS_OK, "sess_config_new failed");
  bool secret_given = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (fuzz::has_prefix(line, "secret:")) {
      secret_given = true;
      const size_t len = line.size() - 7;
      const int rc = sess_config_add_secret(config, line.data() + 7, len);
      FUZZ_CHECK(rc == (len < SESS_MIN_SECRET ? SESS_E_BAD_SECRET : SESS_OK),
                 "sess_config_add_secret of " + std::to_string(len) + " bytes gave " + std::to_string(rc));
      continue;
    }
    const size_t eq = line.find('=');
    const std::string name = line.substr(0, eq).c_str();
    const std::string value = eq == std::string::npos ? "" : line.substr(eq + 1).c_str();
    const int rc = sess_config_set(config, name.c_str(), value.c_str());
    FUZZ_CHECK(rc == SESS_OK || rc == SESS_E_BAD_OPTION,
               "sess_config_set(" + escape(name) + ", " + escape(value) + ") gave " + std::to_string(rc) +
                   ": " + sess_last_error());
    if (rc != SESS_OK) FUZZ_CHECK(*sess_last_error() != '\0', "a refused option has no message");
  }
  if (!secret_given) sess_config_add_secret(config, fuzz::kSecret.data(), fuzz::kSecret.size());

  const std::string scheme = lower_scheme(uri);
  const std::string path = named_path(uri, scheme);
  const bool path_existed = exists(path);
  const size_t threads = thread_count();

  checked_uri = uri;
  in_check = true;
  const int rc = sess_store_check(uri.c_str(), config);
  const std::string message = sess_last_error();
  const int rc_again = sess_store_check(uri.c_str(), config);
  in_check = false;

  FUZZ_CHECK(allowed_check_result(rc), "sess_store_check(" + escape(uri) + ") gave " +
                                           std::to_string(rc) + ": " + message);
  if (rc != SESS_OK) FUZZ_CHECK(!message.empty(), "a refused URI has no message: " + escape(uri));
  FUZZ_CHECK(rc_again == rc, "sess_store_check gave " + std::to_string(rc) + ", then " +
                                 std::to_string(rc_again) + " for " + escape(uri));
  FUZZ_CHECK(thread_count() == threads, "sess_store_check started a thread for " + escape(uri));
  if (!path_existed) FUZZ_CHECK(!exists(path), "sess_store_check created " + escape(path));

  if (scheme == "cookie" || scheme == "memory") {
    sess_store* store = nullptr;
    const int opened = sess_store_open(uri.c_str(), config, &store);
    FUZZ_CHECK(opened == rc, "sess_store_check gave " + std::to_string(rc) + " but sess_store_open " +
                                 std::to_string(opened) + " (" + sess_last_error() + ") for " + escape(uri));
    FUZZ_CHECK((store != nullptr) == (opened == SESS_OK), "sess_store_open's handle disagrees with its result");
    sess_store_close(store);
  }
  sess_config_free(config);
  return 0;
}
