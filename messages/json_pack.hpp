#pragma once
/// Typed messages packed as msgpack maps shaped exactly like their JSON form
/// (`to_json`), without building the JSON first. The journal stores event
/// payloads in that shape; packing them directly costs a fraction of
/// building an nlohmann::json (a node allocation per key) and packing that.
///
/// Contract (tests/unit/messages/json_pack_test.cpp): unpacking the bytes
/// gives a value equal to `value(x)`.

#include <string>

#include <msgpack.hpp>

#include "messages/attempt.hpp"
#include "messages/run.hpp"
#include "messages/step_result.hpp"
#include "messages/usage.hpp"
#include "messages/value.hpp"

namespace caudal {

/// A msgpack stream appending to a std::string: a record is built in the
/// string it is stored as (msgpack::sbuffer starts with an 8 KB allocation
/// and would be copied out).
struct string_stream {
  std::string& out;
  void write(const char* data, size_t size) { out.append(data, size); }
};

using json_packer = msgpack::packer<string_stream>;

void pack_as_json(json_packer& o, const value& v);
void pack_as_json(json_packer& o, const usage& u);
void pack_as_json(json_packer& o, const step_result& r);
void pack_as_json(json_packer& o, const attempt_request& r);
void pack_as_json(json_packer& o, const attempt_result& r);
void pack_as_json(json_packer& o, const run_outcome& r);

}  // namespace caudal
