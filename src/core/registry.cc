#include "registry.h"

#include <algorithm>
#include <cctype>
#include <mutex>

#include "error.h"

namespace sessions::internal {

bool Scheme::takes(std::string_view option) const {
  return std::find(options.begin(), options.end(), option) != options.end() ||
         (takes_option && takes_option(option));
}

Registry& Registry::global() {
  static Registry* registry = [] {
    auto* r = new Registry();  // never destroyed: stores may outlive static destructors
    add_builtin_stores(r);
    return r;
  }();
  return *registry;
}

void Registry::add(Scheme scheme) {
  if (scheme.names.empty() || !scheme.open) fail(Errc::invalid_argument, "a scheme needs a name and open");
  for (auto& name : scheme.names) {
    if (name.empty() || name.size() > 64)
      fail(Errc::invalid_argument, "a scheme name is 1 to 64 characters");
    for (char& c : name) {
      const auto u = static_cast<unsigned char>(c);
      if (!std::isalnum(u) && c != '+' && c != '-' && c != '.')
        fail(Errc::invalid_argument, "scheme '" + name + "' may hold only letters, digits, '+', '-', '.'");
      c = char(std::tolower(u));
    }
  }
  std::unique_lock lock(mutex_);
  for (const auto& name : scheme.names)
    for (const auto& existing : schemes_)
      if (std::find(existing->names.begin(), existing->names.end(), name) != existing->names.end())
        fail(Errc::invalid_argument, "scheme '" + name + ":' is already registered");
  schemes_.push_back(std::make_unique<const Scheme>(std::move(scheme)));
}

const Scheme* Registry::find(std::string_view name) const {
  std::shared_lock lock(mutex_);
  for (const auto& scheme : schemes_)
    if (std::find(scheme->names.begin(), scheme->names.end(), name) != scheme->names.end())
      return scheme.get();
  return nullptr;
}

bool Registry::takes_option(std::string_view option) const {
  std::shared_lock lock(mutex_);
  return std::any_of(schemes_.begin(), schemes_.end(),
                     [&](const auto& scheme) { return scheme->takes(option); });
}

std::string Registry::names() const {
  std::shared_lock lock(mutex_);
  std::string out;
  for (const auto& scheme : schemes_)
    for (const auto& name : scheme->names) out += (out.empty() ? "" : ", ") + name + ":";
  return out;
}

}  // namespace sessions::internal
