#include "storage/keys.hpp"

namespace caudal::storage {

status validate_run_id(std::string_view run_id) {
  if (run_id.empty()) return status::error(status_code::invalid_argument, "empty run id");
  if (run_id.size() > max_run_id_size) {
    return status::error(status_code::invalid_argument,
                         "run id is " + std::to_string(run_id.size()) +
                             " bytes long; the limit is " + std::to_string(max_run_id_size));
  }
  if (run_id.find('\0') != std::string_view::npos) {
    return status::error(status_code::invalid_argument,
                         "run id " + to_hex(run_id) + " (hex) contains a NUL byte");
  }
  return status::ok();
}

std::string run_key(std::string_view run_id) {
  return std::string(run_id);
}

std::string event_prefix(std::string_view run_id) {
  std::string key(run_id);
  key.push_back('\0');
  return key;
}

std::string event_key(std::string_view run_id, uint64_t seq) {
  std::string key = event_prefix(run_id);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((seq >> shift) & 0xff));
  }
  return key;
}

result<event_key_parts> decode_event_key(std::string_view key) {
  auto malformed = [&](const char* why) {
    return status::error(status_code::invalid_argument,
                         "malformed event key " + to_hex(key) + " (hex): " + why);
  };
  if (key.size() < event_sequence_size + 2) return malformed("too short");
  const size_t separator = key.size() - event_sequence_size - 1;
  if (key[separator] != '\0') return malformed("no 0x00 before the 8-byte sequence");
  std::string_view run_id = key.substr(0, separator);
  if (!validate_run_id(run_id).is_ok()) return malformed("invalid run id");
  uint64_t seq = 0;
  for (size_t i = separator + 1; i < key.size(); ++i) {
    seq = (seq << 8) | static_cast<uint8_t>(key[i]);
  }
  return event_key_parts{std::string(run_id), seq};
}

result<std::string> decode_run_key(std::string_view key) {
  status st = validate_run_id(key);
  if (!st.is_ok()) return status::error(st.code(), "malformed run key: " + st.message());
  return std::string(key);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out.push_back(digits[(static_cast<uint8_t>(c) >> 4) & 0xf]);
    out.push_back(digits[static_cast<uint8_t>(c) & 0xf]);
  }
  return out;
}

}  // namespace caudal::storage
