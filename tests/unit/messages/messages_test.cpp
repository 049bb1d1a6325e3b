// Round trips of every message type through both encodings: CAF's binary
// serializer (the actor wire) and msgpack (the journal), plus the JSON forms.

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>
#include <gtest/gtest.h>

#include "messages/type_ids.hpp"

namespace caudal {
namespace {

template <class T>
T caf_round_trip(const T& in) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  T copy = in;
  EXPECT_FALSE(sink(copy));
  T out;
  caf::binary_deserializer source{nullptr, buf};
  EXPECT_FALSE(source(out));
  return out;
}

template <class T>
T msgpack_round_trip(const T& in) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, in);
  auto handle = msgpack::unpack(buf.data(), buf.size());
  return handle.get().as<T>();
}

value sample_value() {
  return value::parse(R"({"text":"héllo","n":42,"neg":-7,"big":18446744073709551615,
                          "f":2.5,"whole":2.0,"ok":true,"none":null,"empty_arr":[],
                          "empty_obj":{},"nested":[1,[2,{"k":"v"}]]})");
}

usage sample_usage() { return usage{120, 30, 0.0042, "gpt-4o-mini"}; }

step_result sample_step_result() {
  step_result r;
  r.name = "draft";
  r.path = "refine/2/draft";
  r.success = true;
  r.output = sample_value();
  r.feedback = "Validation failed: empty draft";
  r.attempts = 3;
  r.usage = sample_usage();
  r.latency_s = 1.25;
  r.fallback_triggered = true;
  r.cache_hit = true;
  r.node = "worker-1";
  r.status = "completed";
  step_result child = r;
  child.name = "child";
  r.children.push_back(child);
  return r;
}

attempt_request sample_request() {
  attempt_request r;
  r.run_id = "r1";
  r.step_path = "fan/a/a1";
  r.step_locator = "2/branch/a/0";
  r.attempt = 2;
  r.feedback = "Agent execution failed with Timeout: timed out after 1 s";
  r.input = "text in";
  r.context = value{{"topic", "rust"}};
  r.steps = value{{"draft", {{"output", "x"}}}};
  r.idempotency_key = "r1:fan/a/a1:2";
  return r;
}

attempt_result sample_result() {
  attempt_result r;
  r.step_path = "draft";
  r.attempt = 3;
  r.failure = failure_class::validation;
  r.error_kind = "";
  r.feedback = "Validation failed: empty draft";
  r.output = nullptr;
  r.usage = sample_usage();
  r.latency_s = 0.5;
  r.node = "local";
  return r;
}

run_event sample_event() {
  return run_event{event_kind::attempt_finished, "r1", "draft", 2, 1764300000123, sample_value()};
}

run_outcome sample_outcome() {
  run_outcome o;
  o.run_id = "r1";
  o.status = run_status::usage_limit_exceeded;
  o.output = "done";
  o.usage = sample_usage();
  o.steps = {sample_step_result()};
  o.error = "Cost limit of $0.50 exceeded (spent $0.53)";
  o.context = value{{"a", 1}};
  return o;
}

TEST(MessagesRoundTrip, ValueBothEncodings) {
  auto v = sample_value();
  EXPECT_EQ(caf_round_trip(v), v);
  EXPECT_EQ(msgpack_round_trip(v), v);
  // Integers stay integers, floats stay floats.
  auto back = msgpack_round_trip(v);
  EXPECT_TRUE(back["n"].is_number_integer());
  EXPECT_TRUE(back["whole"].is_number_float());
  EXPECT_TRUE(back["empty_arr"].is_array());
  EXPECT_TRUE(back["empty_obj"].is_object());
  EXPECT_TRUE(back["none"].is_null());
  EXPECT_EQ(back["big"].get<uint64_t>(), 18446744073709551615ULL);
}

TEST(MessagesRoundTrip, Usage) {
  EXPECT_EQ(caf_round_trip(sample_usage()), sample_usage());
  EXPECT_EQ(msgpack_round_trip(sample_usage()), sample_usage());
}

TEST(MessagesRoundTrip, StepResult) {
  EXPECT_EQ(caf_round_trip(sample_step_result()), sample_step_result());
  EXPECT_EQ(msgpack_round_trip(sample_step_result()), sample_step_result());
}

TEST(MessagesRoundTrip, AttemptRequest) {
  EXPECT_EQ(caf_round_trip(sample_request()), sample_request());
  EXPECT_EQ(msgpack_round_trip(sample_request()), sample_request());
}

TEST(MessagesRoundTrip, AttemptResult) {
  EXPECT_EQ(caf_round_trip(sample_result()), sample_result());
  EXPECT_EQ(msgpack_round_trip(sample_result()), sample_result());
}

TEST(MessagesRoundTrip, RunEvent) {
  EXPECT_EQ(caf_round_trip(sample_event()), sample_event());
  EXPECT_EQ(msgpack_round_trip(sample_event()), sample_event());
}

TEST(MessagesRoundTrip, RunOutcome) {
  EXPECT_EQ(caf_round_trip(sample_outcome()), sample_outcome());
  EXPECT_EQ(msgpack_round_trip(sample_outcome()), sample_outcome());
}

TEST(MessagesRoundTrip, ConstructResult) {
  construct_result c{sample_step_result(), value{{"k", "v"}}};
  EXPECT_EQ(caf_round_trip(c), c);
  EXPECT_EQ(msgpack_round_trip(c), c);
}

TEST(MessagesRoundTrip, MalformedValueBytesAreRefused) {
  value out;
  EXPECT_FALSE(from_msgpack_bytes({0xc1}, out));  // 0xc1 is never used in msgpack
}

TEST(MessagesJson, StepResultJsonRoundTrip) {
  auto r = sample_step_result();
  EXPECT_EQ(value(r).get<step_result>(), r);
}

TEST(MessagesJson, OutcomeHasTheSpecFields) {
  value j = sample_outcome();
  EXPECT_EQ(j["run_id"], "r1");
  EXPECT_EQ(j["status"], "usage_limit_exceeded");
  EXPECT_EQ(j["output"], "done");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 120);
  EXPECT_EQ(j["usage"]["completion_tokens"], 30);
  EXPECT_EQ(j["usage"]["total_tokens"], 150);
  EXPECT_DOUBLE_EQ(j["usage"]["cost_usd"].get<double>(), 0.0042);
  ASSERT_EQ(j["steps"].size(), 1u);
  EXPECT_EQ(j["steps"][0]["path"], "refine/2/draft");
  EXPECT_EQ(j["error"], "Cost limit of $0.50 exceeded (spent $0.53)");
}

TEST(MessagesJson, OutcomeJsonRoundTripWithoutContext) {
  auto o = sample_outcome();
  auto back = value(o).get<run_outcome>();
  o.context = value{};  // the --json result carries no context
  EXPECT_EQ(back, o);
}

TEST(MessagesJson, AttemptResultJsonRoundTrip) {
  auto r = sample_result();
  EXPECT_EQ(value(r).get<attempt_result>(), r);
}

TEST(MessagesStrings, DeepToStringRendersJson) {
  auto r = sample_usage();
  EXPECT_EQ(caf::deep_to_string(r), "usage(120, 30, 0.004200, \"gpt-4o-mini\")");
  value v = value{{"k", 1}};
  EXPECT_NE(caf::deep_to_string(v).find("{\"k\":1}"), std::string::npos);
}

TEST(MessagesTypes, BlockListsEveryType) {
  EXPECT_EQ(caf::type_id<caudal::value>::value, caf::first_custom_type_id);
  EXPECT_EQ(caf::id_block::caudal::end - caf::id_block::caudal::begin, 8);
  EXPECT_STREQ(caf::type_name<caudal::run_event>::value, "caudal::run_event");
}

}  // namespace
}  // namespace caudal
