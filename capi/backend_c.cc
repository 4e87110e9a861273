// The C ABI for custom stores: a user's table of callbacks becomes a
// CallbackBackend, opened directly or made by a factory registered under a
// URI scheme in the same registry as the built-in stores.
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "callback_backend.h"
#include "handles.h"
#include "registry.h"

using sessions::internal::CallbackBackend;
using sessions::internal::Errc;
using sessions::internal::fail;
using sessions::internal::OwnedState;
using sessions::internal::capi::guard;
using sessions::internal::capi::require;

namespace {

void (*close_of(const sess_backend_ops* ops))(void*) {
  return ops ? CallbackBackend::copy_ops(*ops).close : nullptr;
}

// Calls a registered factory with the options the library left, and turns
// what it returns into a backend (or the error it gives).
std::unique_ptr<sessions::internal::Backend> make_from_factory(const std::string& scheme,
                                                     sess_backend_factory factory,
                                                     void* factory_state,
                                                     const sessions::internal::OpenRequest& request) {
  std::vector<const char*> names, values;
  for (const auto& [name, value] : *request.options) {
    names.push_back(name.c_str());
    values.push_back(value.c_str());
  }
  const std::string uri(request.whole_uri);
  const sess_backend_ops* ops = nullptr;
  void* state = nullptr;
  sessions::internal::take_backend_error();
  int rc = factory(factory_state, uri.c_str(), names.data(), values.data(), names.size(), &ops,
                   &state);
  request.options->clear();  // the factory took them, or refused them below
  const std::string why = sessions::internal::take_backend_error();
  if (rc != SESS_OK) {
    OwnedState(close_of(ops), state).reset();  // whatever it made before refusing
    const std::string message = scheme + ": store factory refused the URI or its options" +
                                (why.empty() ? std::string() : ": " + why);
    if (rc == SESS_E_BAD_OPTION) fail(Errc::bad_option, message);
    if (rc == SESS_E_NO_MEMORY) throw std::bad_alloc();
    fail(Errc::bad_uri, message);
  }
  OwnedState owned(close_of(ops), state);
  if (!ops) fail(Errc::invalid_argument, scheme + ": store factory returned no backend table");
  return std::make_unique<CallbackBackend>(*ops, std::move(owned), request.settings.max_data_bytes);
}

}  // namespace

extern "C" {

void sess_sink_set_version(sess_sink* sink, uint64_t version) {
  if (sink) sink->version = version;
}

int sess_sink_write(sess_sink* sink, const void* data, size_t len) {
  if (!sink || (!data && len)) return SESS_E_INVALID_ARGUMENT;
  if (sink->overflowed || len > sink->limit - std::min(sink->limit, sink->out->size())) {
    sink->overflowed = true;
    return SESS_E_VALUE_TOO_LARGE;
  }
  try {
    sink->out->append(static_cast<const char*>(data), len);
  } catch (const std::bad_alloc&) {
    return SESS_E_NO_MEMORY;
  }
  return SESS_OK;
}

void sess_backend_set_error(const char* message) {
  try {
    sessions::internal::set_backend_error(message);
  } catch (...) {  // out of memory: the message is lost, the error code is not
  }
}

int sess_store_open_backend(const sess_backend_ops* ops, void* state, const sess_config* config,
                            sess_store** out) {
  if (out) *out = nullptr;
  // The library owns `state` from here on: every failure below closes it.
  OwnedState owned(close_of(ops), state);
  return guard([&]() -> int {
    require(ops, "backend table");
    require(config, "config");
    require(out, "output pointer");
    auto store = sessions::internal::Store::open_backend(
        [&](const sessions::internal::Settings& settings) {
          return std::make_unique<CallbackBackend>(*ops, std::move(owned), settings.max_data_bytes);
        },
        config->rep);
    *out = new sess_store{std::move(store)};
    return SESS_OK;
  });
}

int sess_register_scheme(const char* scheme, sess_backend_factory factory, void* factory_state,
                         const char* const* options) {
  return guard([&]() -> int {
    require(scheme, "scheme");
    if (!factory) fail(Errc::invalid_argument, "factory is NULL");
    sessions::internal::Scheme entry;
    entry.names = {scheme};
    for (const char* const* name = options; name && *name; ++name) entry.options.emplace_back(*name);
    std::string label = scheme;  // as the registry keeps it: lower-case
    for (char& c : label) c = char(std::tolower(static_cast<unsigned char>(c)));
    entry.open = [label, factory, factory_state](const sessions::internal::OpenRequest& request) {
      return make_from_factory(label, factory, factory_state, request);
    };
    sessions::internal::Registry::global().add(std::move(entry));
    return SESS_OK;
  });
}

}  // extern "C"
