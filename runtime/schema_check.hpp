#pragma once
/// The JSON Schema subset a human's answer to a `hitl` step is checked
/// against (SPEC §1): `type` (object, array, string, number, integer,
/// boolean, null), `required`, `properties` (recursively), `enum`.

#include <optional>
#include <string>

#include "messages/value.hpp"

namespace caudal {

/// Why `v` does not match `schema` ("answer.ok: expected boolean, got
/// string"), or nothing when it does. A null or empty schema accepts anything.
std::optional<std::string> check_against_schema(const value& v, const value& schema,
                                                const std::string& where = "answer");

}  // namespace caudal
