// pack_as_json: every typed payload the journal stores, packed straight to
// msgpack, unpacks to exactly the value its JSON form (to_json) gives — with
// and without the optional keys, floats kept floats, children nested.

#include <gtest/gtest.h>

#include "messages/json_pack.hpp"

namespace caudal {
namespace {

template <class T>
value packed(const T& x) {
  std::string bytes;
  string_stream stream{bytes};
  json_packer o(stream);
  pack_as_json(o, x);
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  return value_from_msgpack(handle.get());
}

step_result leaf(const std::string& name, bool ok) {
  step_result r;
  r.name = name;
  r.path = "fan/" + name;
  r.status = ok ? "completed" : "failed";
  r.success = ok;
  r.output = ok ? value::parse(R"({"text":"héllo","n":[1,2.0,null]})") : value{};
  r.feedback = ok ? "" : "Agent execution failed with X";
  r.attempts = 2;
  r.usage = usage{10, 5, 2.0, ""};
  r.latency_s = 3.0;  // a whole-valued double stays a float
  r.fallback_triggered = !ok;
  r.cache_hit = ok;
  r.node = "local";
  return r;
}

TEST(JsonPack, UsageWithAndWithoutModel) {
  usage u{120, 30, 0.0042, "gpt-4o-mini"};
  EXPECT_EQ(packed(u), value(u));
  u.model.clear();
  EXPECT_EQ(packed(u), value(u));
  EXPECT_TRUE(packed(u)["cost_usd"].is_number_float());
  EXPECT_EQ(packed(u)["total_tokens"], 150);
}

TEST(JsonPack, StepResultWithNestedChildren) {
  auto r = leaf("a", true);
  EXPECT_EQ(packed(r), value(r));
  EXPECT_FALSE(packed(r).contains("children"));
  auto parent = leaf("p", false);
  auto branch = leaf("b", true);
  branch.children = {leaf("x", true), leaf("y", false)};
  parent.children = {branch, leaf("c", true)};
  EXPECT_EQ(packed(parent), value(parent));
  EXPECT_TRUE(packed(parent)["latency_s"].is_number_float());
  EXPECT_EQ(packed(parent)["children"][0]["children"][1]["name"], "y");
}

TEST(JsonPack, AttemptRequestAndResult) {
  attempt_request req;
  req.run_id = "r1";
  req.step_path = "a/b";
  req.step_locator = "0/1";
  req.attempt = 3;
  req.feedback = "try again";
  req.input = value::parse(R"({"q":"x"})");
  req.context = value::parse(R"({"not":"journaled"})");
  req.idempotency_key = "r1:a/b:3";
  EXPECT_EQ(packed(req), value(req));
  EXPECT_FALSE(packed(req).contains("context"));

  attempt_result res;
  res.step_path = "a/b";
  res.attempt = 3;
  res.failure = failure_class::validation;
  res.error_kind = "ValidationError";
  res.feedback = "missing key";
  res.usage = usage{1, 2, 0.5, "m"};
  res.latency_s = 0.25;
  res.node = "w1";
  EXPECT_EQ(packed(res), value(res));
  EXPECT_EQ(packed(res)["failure"], "validation");
  res.retry_after_s = 2.0;  // a server's Retry-After: written only when set
  EXPECT_EQ(packed(res), value(res));
  EXPECT_EQ(packed(res)["retry_after_s"], 2.0);
  res.retry_after_s = 0;
  EXPECT_FALSE(packed(res).contains("retry_after_s"));
  res.failure = failure_class::none;
  res.output = "done";
  EXPECT_EQ(packed(res), value(res));
  EXPECT_EQ(packed(res)["success"], true);
}

TEST(JsonPack, RunOutcomeWithAndWithoutError) {
  run_outcome out;
  out.run_id = "r1";
  out.status = run_status::completed;
  out.output = 42;
  out.usage = usage{3, 4, 0, ""};
  out.steps = {leaf("a", true), leaf("b", true)};
  EXPECT_EQ(packed(out), value(out));
  out.status = run_status::failed;
  out.error = "step 'b': boom";
  EXPECT_EQ(packed(out), value(out));
}

TEST(JsonPack, PlainValue) {
  auto v = value::parse(R"({"f":2.0,"big":18446744073709551615,"neg":-1,"s":"é"})");
  EXPECT_EQ(packed(v), v);
}

}  // namespace
}  // namespace caudal
