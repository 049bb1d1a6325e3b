#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "caudal/agent.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {
namespace {

using testing::ElementsAre;

std::string fixture(const std::string& name) {
  return std::string(CAUDAL_FIXTURES_DIR) + "/" + name;
}

/// Plays back a canned outcome, feeding its stdout to on_stdout in pieces of
/// `piece_size` bytes, and remembers the spec it was given.
class scripted_runner : public process_runner {
 public:
  explicit scripted_runner(process_outcome outcome, size_t piece_size = 1)
      : outcome_(std::move(outcome)), piece_size_(piece_size) {}
  process_outcome run(const process_spec& spec, const cancel_token*) override {
    last_spec = spec;
    for (size_t i = 0; spec.on_stdout && i < outcome_.out.size(); i += piece_size_) {
      spec.on_stdout(std::string_view(outcome_.out).substr(i, piece_size_));
    }
    return outcome_;
  }
  process_spec last_spec;

 private:
  process_outcome outcome_;
  size_t piece_size_;
};

agent_spec spec_of(value config, std::string base_dir = "") {
  agent_spec spec;
  spec.name = "tool";
  spec.type = "command";
  spec.config = std::move(config);
  spec.base_dir = std::move(base_dir);
  return spec;
}

std::unique_ptr<agent> make_agent(value config, std::shared_ptr<process_runner> runner = nullptr) {
  if (!runner) runner = make_posix_process_runner();
  auto spec = spec_of(std::move(config));
  std::string error;
  auto made = command_agent_kind(runner).make(spec, error);
  EXPECT_NE(made, nullptr) << error;
  return made;
}

agent_reply invoke(agent& a, value input = "", double timeout_s = 0) {
  agent_call call;
  call.input = std::move(input);
  call.timeout_s = timeout_s;
  return a.invoke(call);
}

process_outcome exited_with(std::string out) {
  process_outcome outcome;
  outcome.out = std::move(out);
  return outcome;
}

void expect_failure(const agent_reply& reply, const std::string& kind, const std::string& message) {
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, kind);
  EXPECT_EQ(reply.error.message, message);
}

TEST(CommandAgentTest, IsBlockingAndDeclaresItsKeys) {
  auto kind = command_agent_kind(make_posix_process_runner());
  EXPECT_TRUE(kind.keys.at("argv").required);
  EXPECT_EQ(kind.keys.at("argv").type, config_type::string_list);
  EXPECT_EQ(kind.keys.at("env").type, config_type::string_map);
  for (auto key : {"protocol", "cwd", "timeout_s", "model"}) EXPECT_EQ(kind.keys.count(key), 1u);
  EXPECT_TRUE(make_agent({{"argv", {"cat"}}})->is_blocking());
}

TEST(CommandAgentTest, RejectsBadConfigs) {
  auto kind = command_agent_kind(make_posix_process_runner());
  std::string error;
  EXPECT_EQ(kind.make(spec_of({{"argv", value::array()}}), error), nullptr);
  EXPECT_EQ(error, "command agent 'tool': 'argv' must be a non-empty list of strings");
  EXPECT_EQ(kind.make(spec_of({{"argv", {"cat"}}, {"protocol", "xml"}}), error), nullptr);
  EXPECT_EQ(error, "command agent 'tool': 'protocol' must be 'text' or 'jsonl', got 'xml'");
}

TEST(CommandAgentTest, TextOutputIsStdoutWithoutTrailingNewlines) {
  auto reply = invoke(*make_agent({{"argv", {fixture("echo_stdin.sh")}}}), "hello\n\r\n\n");
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, "hello");
  EXPECT_EQ(reply.usage, usage{});
}

TEST(CommandAgentTest, NonStringInputGoesToStdinAsJson) {
  auto reply = invoke(*make_agent({{"argv", {"cat"}}}), {{"a", 1}, {"b", {true, nullptr}}});
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, R"({"a":1,"b":[true,null]})");
}

TEST(CommandAgentTest, TextOutputReportsTheConfiguredModel) {
  auto reply = invoke(*make_agent({{"argv", {"cat"}}, {"model", "local-7b"}}), "x");
  EXPECT_EQ(reply.usage.model, "local-7b");
}

TEST(CommandAgentTest, JsonlStreamsChunksInOrderAndReadsUsage) {
  auto a = make_agent({{"argv", {fixture("jsonl_stream.sh")}}, {"protocol", "jsonl"}});
  agent_call call;
  std::vector<std::string> chunks;
  call.on_chunk = [&](std::string_view chunk) { chunks.emplace_back(chunk); };
  auto reply = a->invoke(call);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_THAT(chunks, ElementsAre("Hel", "lo, ", "world"));
  EXPECT_EQ(reply.output, value({{"text", "Hello, world"}}));
  EXPECT_EQ(reply.usage, (usage{12, 3, 0.25, "stub-1"}));
}

TEST(CommandAgentTest, JsonlLinesSplitAcrossReadsAreReassembled) {
  auto runner = std::make_shared<scripted_runner>(
      exited_with("{\"chunk\": \"a\\u00e9\"}\r\n\n{\"chunk\": \"b\"}\n{\"output\": [1, 2]}"), 3);
  auto a = make_agent({{"argv", {"tool"}}, {"protocol", "jsonl"}, {"model", "m"}}, runner);
  agent_call call;
  std::string streamed;
  call.on_chunk = [&](std::string_view chunk) { streamed += std::string(chunk) + "|"; };
  auto reply = a->invoke(call);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(streamed, "a\xC3\xA9|b|");
  EXPECT_EQ(reply.output, value({1, 2}));
  EXPECT_EQ(reply.usage.model, "m");  // no usage line: the config's model
}

TEST(CommandAgentTest, JsonlNonJsonLineIsAProtocolError) {
  auto a = make_agent({{"argv", {fixture("jsonl_bad.sh")}}, {"protocol", "jsonl"}});
  expect_failure(invoke(*a), "ProtocolError", "line 2 is not JSON: this is not json");
}

TEST(CommandAgentTest, JsonlBadLinePreviewIsCappedAt200Bytes) {
  std::string junk(300, 'z');
  auto runner = std::make_shared<scripted_runner>(exited_with(junk + "\n"), 64);
  auto a = make_agent({{"argv", {"tool"}}, {"protocol", "jsonl"}}, runner);
  expect_failure(invoke(*a), "ProtocolError", "line 1 is not JSON: " + junk.substr(0, 200));
}

TEST(CommandAgentTest, JsonlWithoutOutputLineIsAProtocolError) {
  auto a = make_agent({{"argv", {"echo", R"({"chunk": "only"})"}}, {"protocol", "jsonl"}});
  expect_failure(invoke(*a), "ProtocolError", "no {\"output\": ...} line");
}

TEST(CommandAgentTest, JsonlMalformedUsageNamesTheField) {
  auto line = R"({"output": 1, "usage": {"prompt_tokens": 4, "cost_usd": -0.5}})";
  auto a = make_agent({{"argv", {"echo", line}}, {"protocol", "jsonl"}});
  expect_failure(invoke(*a), "ProtocolError",
                 "usage.cost_usd must be a non-negative number, got -0.5");
  auto tokens = R"({"output": 1, "usage": {"completion_tokens": "3"}})";
  auto b = make_agent({{"argv", {"echo", tokens}}, {"protocol", "jsonl"}});
  expect_failure(invoke(*b), "ProtocolError",
                 "usage.completion_tokens must be a non-negative integer, got \"3\"");
}

TEST(CommandAgentTest, JsonlUsageModelFallsBackToTheConfig) {
  auto line = R"({"output": "x", "usage": {"prompt_tokens": 1, "completion_tokens": 2}})";
  auto a = make_agent({{"argv", {"echo", line}}, {"protocol", "jsonl"}, {"model", "cfg"}});
  auto reply = invoke(*a);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.usage, (usage{1, 2, 0, "cfg"}));
}

TEST(CommandAgentTest, NonZeroExitCarriesTheStderrTail) {
  expect_failure(invoke(*make_agent({{"argv", {fixture("fail_with.sh"), "3"}}})), "NonZeroExit",
                 "exit code 3: something went wrong");
  expect_failure(invoke(*make_agent({{"argv", {"sh", "-c", "exit 4"}}})), "NonZeroExit",
                 "exit code 4");
}

TEST(CommandAgentTest, NonZeroExitKeepsOnlyTheLast2000BytesOfStderr) {
  process_outcome outcome;
  outcome.exit_code = 1;
  outcome.err = std::string(2500, 'a') + "END \n\n";
  auto a = make_agent({{"argv", {"tool"}}}, std::make_shared<scripted_runner>(outcome));
  expect_failure(invoke(*a), "NonZeroExit", "exit code 1: " + std::string(1997, 'a') + "END");
}

TEST(CommandAgentTest, SignalIsNamed) {
  expect_failure(invoke(*make_agent({{"argv", {"sh", "-c", "kill -SEGV $$"}}})), "Signaled",
                 "killed by signal 11 (SIGSEGV)");
}

TEST(CommandAgentTest, TimeoutUsesTheCallLimitElseTheConfig) {
  auto sleeper = value{{"argv", {fixture("sleep_forever.sh")}}, {"timeout_s", 0.5}};
  expect_failure(invoke(*make_agent(sleeper)), "Timeout", "timed out after 0.5 s");
  sleeper["timeout_s"] = 100;
  expect_failure(invoke(*make_agent(sleeper), "", 0.25), "Timeout", "timed out after 0.25 s");
}

TEST(CommandAgentTest, TimeoutTextHasNoTrailingZeros) {
  process_outcome outcome;
  outcome.how = process_outcome::end::timed_out;
  auto runner = std::make_shared<scripted_runner>(outcome);
  auto a = make_agent({{"argv", {"tool"}}}, runner);
  expect_failure(invoke(*a, "", 2), "Timeout", "timed out after 2 s");
  EXPECT_EQ(runner->last_spec.timeout, std::chrono::milliseconds(2000));
}

TEST(CommandAgentTest, CancelledCallFailsAsCancelled) {
  cancel_token token;
  token.cancel();
  agent_call call;
  call.cancel = &token;
  expect_failure(make_agent({{"argv", {fixture("sleep_forever.sh")}}})->invoke(call), "Cancelled",
                 "cancelled");
}

TEST(CommandAgentTest, SpawnFailureNamesTheProgram) {
  expect_failure(invoke(*make_agent({{"argv", {"/nonexistent/caudal-tool"}}})), "SpawnFailed",
                 "cannot run '/nonexistent/caudal-tool': No such file or directory");
}

TEST(CommandAgentTest, SetsCaudalVariablesOverTheUserEnvironment) {
  auto a = make_agent({{"argv", {fixture("print_env.sh"), "MY_VAR"}},
                       {"env", {{"CAUDAL_ATTEMPT", "99"}, {"MY_VAR", 7}}}});
  agent_call call;
  call.run_id = "run-1";
  call.step_path = "outer/inner";
  call.attempt = 2;
  call.feedback = "Validation failed: empty";
  call.idempotency_key = "run-1/outer/inner/2";
  auto reply = a->invoke(call);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output,
            "CAUDAL_RUN_ID=run-1\nCAUDAL_STEP=outer/inner\nCAUDAL_ATTEMPT=2\n"
            "CAUDAL_FEEDBACK=Validation failed: empty\n"
            "CAUDAL_IDEMPOTENCY_KEY=run-1/outer/inner/2\nMY_VAR=7");
}

TEST(CommandAgentTest, RunsInTheConfiguredDirectory) {
  auto reply = invoke(*make_agent({{"argv", {"pwd"}}, {"cwd", "/tmp"}}));
  EXPECT_EQ(reply.output, "/tmp");
}

TEST(CommandAgentTest, RelativePathsResolveAgainstThePipelineDirectory) {
  auto kind = command_agent_kind(make_posix_process_runner());
  std::string error;
  auto a =
      kind.make(spec_of({{"argv", {"./echo_stdin.sh"}}, {"cwd", "."}}, CAUDAL_FIXTURES_DIR), error);
  ASSERT_NE(a, nullptr) << error;
  auto reply = invoke(*a, "next to the pipeline");
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, "next to the pipeline");
  auto pwd = kind.make(spec_of({{"argv", {"pwd"}}, {"cwd", "."}}, "/tmp"), error);
  EXPECT_EQ(invoke(*pwd).output, "/tmp");  // "/tmp/." as the directory, printed by pwd as /tmp
  auto missing = kind.make(spec_of({{"argv", {"./no-such-tool"}}}, "/tmp"), error);
  expect_failure(invoke(*missing), "SpawnFailed",
                 "cannot run './no-such-tool': No such file or directory");
}

TEST(CommandAgentTest, FlakyFixtureFailsUntilItsAttempt) {
  auto a = make_agent({{"argv", {fixture("flaky.sh"), "2"}}});
  agent_call call;
  expect_failure(a->invoke(call), "NonZeroExit", "exit code 1: attempt 1 failed");
  call.attempt = 2;
  call.feedback = "previous";
  auto reply = a->invoke(call);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, "ok attempt 2");
}

}  // namespace
}  // namespace caudal
