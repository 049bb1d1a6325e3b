#pragma once
/// The envelope every stored record shares: a msgpack array
/// `[record_version, body]` (storage/run_records.hpp says why).
///
/// Thread-safety: pure functions.

#include <exception>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "storage/run_records.hpp"

namespace caudal::storage {

template <class T>
std::string encode_record(const T& body) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_array(2);
  packer.pack(record_version);
  packer.pack(body);
  return std::string(buffer.data(), buffer.size());
}

/// Decodes `[version, body]`; on failure returns false and says why.
template <class T>
bool decode_record(std::string_view bytes, T& body, std::string& why) {
  try {
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& envelope = handle.get();
    if (envelope.type != msgpack::type::ARRAY || envelope.via.array.size != 2) {
      why = "not a [version, body] record";
      return false;
    }
    const uint32_t version = envelope.via.array.ptr[0].as<uint32_t>();
    if (version != record_version) {
      why = "record version " + std::to_string(version) + " is not known (this Caudal reads " +
            std::to_string(record_version) + ")";
      return false;
    }
    envelope.via.array.ptr[1].convert(body);
    return true;
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
}

}  // namespace caudal::storage
