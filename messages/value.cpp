#include "messages/value.hpp"

namespace caudal {

std::vector<uint8_t> to_msgpack_bytes(const value& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return {reinterpret_cast<const uint8_t*>(buf.data()),
          reinterpret_cast<const uint8_t*>(buf.data()) + buf.size()};
}

bool from_msgpack_bytes(const std::vector<uint8_t>& bytes, value& out) {
  try {
    auto handle = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    out = value_from_msgpack(handle.get());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

value value_from_msgpack(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return nullptr;
    case msgpack::type::BOOLEAN:
      return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
      if (o.via.u64 <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(o.via.u64);
      return o.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
      return o.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return o.via.f64;
    case msgpack::type::STR:
      return std::string(o.via.str.ptr, o.via.str.size);
    case msgpack::type::BIN:
      return value::binary(std::vector<uint8_t>(o.via.bin.ptr, o.via.bin.ptr + o.via.bin.size));
    case msgpack::type::ARRAY: {
      value arr = value::array();
      for (uint32_t i = 0; i < o.via.array.size; ++i)
        arr.push_back(value_from_msgpack(o.via.array.ptr[i]));
      return arr;
    }
    case msgpack::type::MAP: {
      value obj = value::object();
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        std::string key = kv.key.type == msgpack::type::STR
                              ? std::string(kv.key.via.str.ptr, kv.key.via.str.size)
                              : value_from_msgpack(kv.key).dump();
        obj[key] = value_from_msgpack(kv.val);
      }
      return obj;
    }
    case msgpack::type::EXT:
      break;
  }
  throw msgpack::type_error();
}

}  // namespace caudal
