#include "runtime/schema_check.hpp"

namespace caudal {

namespace {

std::string type_of(const value& v) {
  switch (v.type()) {
    case value::value_t::object: return "object";
    case value::value_t::array: return "array";
    case value::value_t::string: return "string";
    case value::value_t::boolean: return "boolean";
    case value::value_t::null: return "null";
    case value::value_t::number_integer:
    case value::value_t::number_unsigned: return "integer";
    default: return "number";
  }
}

bool has_type(const value& v, const std::string& type) {
  auto actual = type_of(v);
  if (type == "number") return actual == "number" || actual == "integer";
  return actual == type;
}

}  // namespace

std::optional<std::string> check_against_schema(const value& v, const value& schema,
                                                const std::string& where) {
  if (!schema.is_object()) return std::nullopt;
  if (auto t = schema.find("type"); t != schema.end() && t->is_string() &&
                                     !has_type(v, t->get<std::string>()))
    return where + ": expected " + t->get<std::string>() + ", got " + type_of(v);
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array()) {
    bool is_listed = false;
    for (const auto& allowed : *e) is_listed = is_listed || allowed == v;
    if (!is_listed) return where + ": " + v.dump() + " is not one of " + e->dump();
  }
  if (!v.is_object()) return std::nullopt;
  if (auto r = schema.find("required"); r != schema.end() && r->is_array())
    for (const auto& key : *r)
      if (key.is_string() && !v.contains(key.get<std::string>()))
        return where + ": missing required key '" + key.get<std::string>() + "'";
  if (auto p = schema.find("properties"); p != schema.end() && p->is_object())
    for (auto it = p->begin(); it != p->end(); ++it)
      if (v.contains(it.key()))
        if (auto bad = check_against_schema(v.at(it.key()), it.value(), where + "." + it.key()))
          return bad;
  return std::nullopt;
}

}  // namespace caudal
