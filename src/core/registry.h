// Which backend each store URI scheme opens. The built-in stores and those
// users register (sess_register_scheme) go through this one table: each
// scheme declares the options its backend takes, so that sess_config_set
// accepts exactly what some store's URI accepts.
#pragma once

#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backend.h"
#include "options.h"

namespace sessions::internal {

struct Settings;

// What a scheme's open() gets.
struct OpenRequest {
  const ParsedUri& uri;
  std::string_view whole_uri;  // as the caller wrote it
  const Settings& settings;    // the general options, already applied
  OptionList* options;         // the rest: take what the backend understands
};

struct Scheme {
  std::vector<std::string> names;    // lower-case: "redis", "redis+unix"
  std::vector<std::string> options;  // option names its backend takes
  // For open-ended option sets (libpq's keywords): true for any name it takes.
  std::function<bool(std::string_view)> takes_option;
  // Makes the backend (nullptr for cookie:, which has none). Throws
  // Errc::bad_uri or bad_option; must not dial (Backend::start does).
  std::function<std::unique_ptr<Backend>(const OpenRequest&)> open;

  bool takes(std::string_view option) const;
};

class Registry {
 public:
  // The process's registry, holding the built-in stores from the start.
  static Registry& global();

  // Throws Errc::invalid_argument for a name that is taken or not a scheme.
  void add(Scheme scheme);
  // nullptr when unknown. Schemes are never removed, so the pointer lasts.
  const Scheme* find(std::string_view name) const;
  bool takes_option(std::string_view option) const;
  std::string names() const;  // "cookie:, memory:, ..." for error messages

 private:
  mutable std::shared_mutex mutex_;
  std::vector<std::unique_ptr<const Scheme>> schemes_;
};

// Adds the stores built into the library (src/stores/builtin_stores.cc).
void add_builtin_stores(Registry* registry);

}  // namespace sessions::internal
