// Parallel work against a run-wide limit through the engine (SPEC §4):
// fan-outs of many jsonl `command` branches without reservations (the
// overshoot is bounded by the attempts in flight) and with them (the limit
// is never passed when estimates are exact), maps with reservations, a
// refused first reservation, and a halt that kills the attempts still
// running.

#include <algorithm>
#include <cstdio>
#include <regex>

#include "usage_fixture.hpp"

namespace caudal::testing {
namespace {

using namespace std::chrono_literals;

using UsageFanOut = UsageLimits;

// A parallel step of `branches` branches, each one step `s` that reports
// 100 tokens (optionally expecting `expected` tokens), at most
// `concurrency` at once, against a run limit of 1000 tokens.
std::string fan_out(int branches, int concurrency, int expected) {
  std::string yaml = pipeline_head + "limits: {total_tokens: 1000}\nagents:\n" +
                     agent("hundred", 90, 10) +
                     R"(steps:
  - kind: parallel
    name: fan
    max_concurrency: )" +
                     std::to_string(concurrency) + R"(
    branches:
)";
  for (int i = 0; i < branches; ++i) {
    char name[16];  // room for any int: -O0 builds check snprintf's bounds
    std::snprintf(name, sizeof name, "b%02d", i);
    yaml += std::string{"      "} + name + ": [{name: s, agent: hundred";
    if (expected > 0) yaml += ", expected: {tokens: " + std::to_string(expected) + "}";
    yaml += "}]\n";
  }
  return yaml + "  - {name: after, agent: hundred}\n";
}

// The tokens named in a breach text "... (used N)" or a refusal "(used N,
// reserved R, ...)".
int64_t used_in(const std::string& error) {
  std::smatch m;
  if (!std::regex_search(error, m, std::regex{R"(\(used (\d+))"})) return -1;
  return std::stoll(m[1]);
}

TEST_F(UsageFanOut, WithoutReservationsAFanOutOvershootsByAtMostTheAttemptsInFlight) {
  for (int concurrency : {4, 1, 20}) {
    SCOPED_TRACE("max_concurrency " + std::to_string(concurrency));
    fs::remove(log_);
    auto out = run(fan_out(20, concurrency, 0));
    EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
    EXPECT_TRUE(
        std::regex_match(out.error, std::regex{R"(Token limit of 1000 exceeded \(used \d+\))"}))
        << out.error;
    // The breach is found at the first report past the limit.
    EXPECT_EQ(used_in(out.error), 1100);
    auto spent = out.usage.total_tokens();
    EXPECT_GT(spent, 1000);
    EXPECT_LE(spent, 1000 + concurrency * 100);
    EXPECT_EQ(spent, reported().total_tokens()) << "the outcome lost a report";
    // Started: 11 up to the breach and the others in flight then; nothing
    // after the breach, even where a finished branch freed a slot before
    // the cancel arrived.
    auto lines = ran();
    EXPECT_LE(static_cast<int>(lines.size()), 10 + concurrency);
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "after#1"), 0);
    if (concurrency == 1) {
      EXPECT_EQ(spent, 1100);  // a chain: nothing else was in flight
    }
    std::printf(
        "[ measured ] no reservations, max_concurrency %d: spent %lld of 1000 tokens "
        "(%zu attempts started)\n",
        concurrency, static_cast<long long>(spent), lines.size());
    events_clear();
  }
}

TEST_F(UsageFanOut, WithExactReservationsAFanOutNeverPassesTheLimit) {
  for (int concurrency : {4, 0}) {
    SCOPED_TRACE("max_concurrency " + std::to_string(concurrency));
    fs::remove(log_);
    auto out = run(fan_out(20, concurrency, 100));
    EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
    // The eleventh reservation is refused: spent and reserved fill the limit.
    std::smatch m;
    ASSERT_TRUE(std::regex_match(
        out.error, m,
        std::regex{std::string{R"(Token limit of 1000 would be exceeded by step 'fan/b\d\d/s' )"} +
                   R"(\(used (\d+), reserved (\d+), expects 100\))"}))
        << out.error;
    EXPECT_EQ(std::stoll(m[1]) + std::stoll(m[2]), 1000);
    auto spent = out.usage.total_tokens();
    EXPECT_LE(spent, 1000);
    EXPECT_EQ(spent, reported().total_tokens());
    auto lines = ran();
    EXPECT_LE(lines.size(), 10u);
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "after#1"), 0);
    std::printf(
        "[ measured ] exact reservations, max_concurrency %d: spent %lld of 1000 tokens "
        "(%zu attempts started)\n",
        concurrency, static_cast<long long>(spent), lines.size());
    events_clear();
  }
}

TEST_F(UsageFanOut, WithLowEstimatesAFanOutOvershootsByAtMostTheDifferenceInFlight) {
  // Expecting 80 where 100 are spent, 4 at a time: each reservation in
  // flight may spend 20 more than it reserved.
  auto out = run(fan_out(20, 4, 80));
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  auto spent = out.usage.total_tokens();
  EXPECT_LE(spent, 1000 + 4 * 20) << out.error;
  EXPECT_EQ(spent, reported().total_tokens());
  auto lines = ran();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "after#1"), 0);
  std::printf(
      "[ measured ] reservations of 80 for 100, max_concurrency 4: spent %lld of 1000 "
      "tokens (%s)\n",
      static_cast<long long>(spent), out.error.c_str());
}

TEST_F(UsageFanOut, AMapWithReservationsNeverPassesTheLimit) {
  value items = value::array();
  for (int i = 0; i < 20; ++i) items.push_back(i);
  auto out =
      run(pipeline_head + "limits: {total_tokens: 1000}\nagents:\n" + agent("hundred", 90, 10) +
              R"(steps:
  - kind: map
    name: each
    over: "context.items"
    body: [{name: handle, agent: hundred, expected: {tokens: 100}}]
  - {name: after, agent: hundred}
)",
          {}, value{{"items", items}});
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      out.error, m,
      std::regex{
          std::string{R"(Token limit of 1000 would be exceeded by step 'each/\d+/handle' )"} +
          R"(\(used (\d+), reserved (\d+), expects 100\))"}))
      << out.error;
  EXPECT_EQ(std::stoll(m[1]) + std::stoll(m[2]), 1000);
  EXPECT_LE(out.usage.total_tokens(), 1000);
  auto lines = ran();
  EXPECT_LE(lines.size(), 10u);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "after#1"), 0);
}

TEST_F(UsageFanOut, AMapWithReservationsWithinTheLimitCompletes) {
  auto out =
      run(pipeline_head + "limits: {total_tokens: 1000}\nagents:\n" + agent("hundred", 90, 10) +
          R"(steps:
  - kind: map
    name: each
    over: "{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}"
    max_concurrency: 3
    body: [{name: handle, agent: hundred, expected: {tokens: 100}}]
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.usage.total_tokens(), 1000);
  EXPECT_EQ(ran().size(), 10u);
}

TEST_F(UsageFanOut, AReservationRefusedForTheFirstStepHaltsTheRun) {
  // The caller's limit is below what the first step expects: it never runs.
  auto out = run(pipeline_head + "agents:\n" + agent("hundred", 90, 10) + R"(steps:
  - {name: s, agent: hundred, expected: {tokens: 100}}
)",
                 usage_limits{std::nullopt, 50});
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error,
            "Token limit of 50 would be exceeded by step 's' (used 0, reserved 0, expects 100)");
  EXPECT_TRUE(ran().empty());
}

TEST_F(UsageFanOut, AHaltKillsTheAttemptsStillRunning) {
  auto pid_file = dir_ / "pids";
  auto out =
      run(pipeline_head + "limits: {total_tokens: 50}\nagents:\n" + agent("hundred", 90, 10) +
          R"(  hang: {type: command, argv: ["@FIXTURES@/write_pids.sh", "@DIR@/pids"]}
  wait: {type: command, argv: ["sh", "-c", "while [ ! -f @DIR@/pids ]; do sleep 0.01; done"]}
steps:
  - kind: parallel
    name: fan
    branches:
      slow: [{name: hang, agent: hang}]
      fast: [{name: wait, agent: wait}, {name: spend, agent: hundred}]
  - {name: after, agent: hundred}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Token limit of 50 exceeded (used 100)");
  EXPECT_EQ(ran(), (strings{"fan/fast/spend#1"}));
  pid_t child = 0, grandchild = 0;
  std::ifstream{pid_file} >> child >> grandchild;
  ASSERT_GT(child, 0);
  EXPECT_TRUE(is_dead(child));
  EXPECT_TRUE(eventually([&] { return is_dead(grandchild); }, 2s));
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.usage.total_tokens(), 100);
}

}  // namespace
}  // namespace caudal::testing
