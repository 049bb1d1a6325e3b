#pragma once
/// `value`: the JSON value every agent consumes and produces, and its two
/// encodings: a msgpack-cxx adaptor (journal and wire share msgpack) and a CAF
/// `inspect()` that carries it as msgpack bytes.
///
/// Thread-safety: a value is a plain value type; share copies, not references.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>

namespace caudal {

using value = nlohmann::json;

/// Encodes a value as msgpack bytes (the journal and wire encoding).
std::vector<uint8_t> to_msgpack_bytes(const value& v);

/// Decodes msgpack bytes made by to_msgpack_bytes; a malformed buffer yields
/// `false` and leaves `out` unspecified.
bool from_msgpack_bytes(const std::vector<uint8_t>& bytes, value& out);

/// Converts a decoded msgpack object into a value. Throws msgpack::type_error
/// on an object kind JSON cannot hold (e.g. a map with non-string keys is
/// converted with keys rendered as JSON text).
value value_from_msgpack(const msgpack::object& o);

}  // namespace caudal

namespace nlohmann {

/// CAF inspection of a JSON value: carried as its msgpack encoding, rendered as
/// JSON text by CAF's stringification.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, json& x) {
  if constexpr (std::is_same_v<typename Inspector::result_type, void>) {
    // Stringification (deep_to_string, logs): human-readable JSON.
    std::string text = x.dump(-1, ' ', false, json::error_handler_t::replace);
    return f(text);
  } else {
    std::vector<uint8_t> bytes;
    if constexpr (Inspector::reads_state) bytes = caudal::to_msgpack_bytes(x);
    auto load = caf::meta::load_callback([&]() -> caf::error {
      if (!caudal::from_msgpack_bytes(bytes, x))
        return caf::make_error(caf::sec::invalid_argument, "malformed value");
      return caf::none;
    });
    return f(caf::meta::type_name("value"), bytes, load);
  }
}

}  // namespace nlohmann

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
namespace adaptor {

template <>
struct pack<nlohmann::json> {
  // msgpack-cxx 4.1's pack_double writes a whole-valued double (2.0) as an
  // integer, which would turn JSON floats into integers on the way back. Write
  // the float64 marker and big-endian bits ourselves; pack_bin_body appends
  // raw bytes.
  template <typename Stream>
  static void pack_float64(packer<Stream>& o, double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    char buf[9];
    buf[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
    o.pack_bin_body(buf, sizeof buf);
  }

  template <typename Stream>
  packer<Stream>& operator()(packer<Stream>& o, const nlohmann::json& v) const {
    switch (v.type()) {
      case nlohmann::json::value_t::null:
      case nlohmann::json::value_t::discarded:
        o.pack_nil();
        break;
      case nlohmann::json::value_t::boolean:
        o.pack(v.get<bool>());
        break;
      case nlohmann::json::value_t::number_integer:
        o.pack(v.get<int64_t>());
        break;
      case nlohmann::json::value_t::number_unsigned:
        o.pack(v.get<uint64_t>());
        break;
      case nlohmann::json::value_t::number_float:
        pack_float64(o, v.get<double>());
        break;
      case nlohmann::json::value_t::string:
        o.pack(v.get_ref<const std::string&>());
        break;
      case nlohmann::json::value_t::binary: {
        const auto& b = v.get_binary();
        o.pack_bin(static_cast<uint32_t>(b.size()));
        o.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<uint32_t>(b.size()));
        break;
      }
      case nlohmann::json::value_t::array:
        o.pack_array(static_cast<uint32_t>(v.size()));
        for (const auto& e : v) o.pack(e);
        break;
      case nlohmann::json::value_t::object:
        o.pack_map(static_cast<uint32_t>(v.size()));
        for (auto it = v.begin(); it != v.end(); ++it) {
          o.pack(it.key());
          o.pack(it.value());
        }
        break;
    }
    return o;
  }
};

template <>
struct convert<nlohmann::json> {
  const msgpack::object& operator()(const msgpack::object& o, nlohmann::json& v) const {
    v = caudal::value_from_msgpack(o);
    return o;
  }
};

}  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE
}  // namespace msgpack
