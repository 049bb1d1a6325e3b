// The JSON Schema subset that checks answers to hitl pauses.

#include <gtest/gtest.h>

#include "runtime/schema_check.hpp"

namespace caudal {
namespace {

const value schema = value::parse(R"({
  "type": "object", "required": ["ok"],
  "properties": {"ok": {"type": "boolean"}, "score": {"type": "number"},
                 "level": {"enum": ["low", "high"]}, "n": {"type": "integer"},
                 "tags": {"type": "array"}}})");

std::string why(const value& v) {
  auto bad = check_against_schema(v, schema);
  return bad ? *bad : "";
}

TEST(SchemaCheck, AcceptsWhatMatches) {
  EXPECT_EQ(why(value::parse(R"({"ok": true, "score": 2, "level": "low", "n": 3,
                                  "tags": [], "extra": null})")),
            "");
  EXPECT_FALSE(check_against_schema("anything", value{}));
  EXPECT_FALSE(check_against_schema(42, value::object()));
}

TEST(SchemaCheck, NamesWhatDoesNot) {
  EXPECT_EQ(why("yes"), "answer: expected object, got string");
  EXPECT_EQ(why(value::object()), "answer: missing required key 'ok'");
  EXPECT_EQ(why(value::parse(R"({"ok": "yes"})")), "answer.ok: expected boolean, got string");
  EXPECT_EQ(why(value::parse(R"({"ok": true, "level": "mid"})")),
            R"(answer.level: "mid" is not one of ["low","high"])");
  EXPECT_EQ(why(value::parse(R"({"ok": true, "n": 1.5})")), "answer.n: expected integer, got number");
  EXPECT_EQ(why(value::parse(R"({"ok": true, "score": "high"})")),
            "answer.score: expected number, got string");
}

}  // namespace
}  // namespace caudal
