// An embedder: a program that runs Caudal pipelines in-process, with an
// agent kind of its own. Usage: caudal_embedder DB_DIR
//
// It registers `wordcount`, a kind that is a plain function (it streams each
// word it counts and reports one prompt token per word), loads a pipeline
// from a string, runs it with an event callback until a pause asks a human,
// then resumes the run with the answer: the calls `caudal run` and
// `caudal resume` make. Run by tests/acceptance/embedder_test.cpp.

#include <iostream>
#include <mutex>
#include <sstream>

#include <caudal/engine.hpp>

namespace {

constexpr const char* pipeline_yaml = R"(
version: 1
name: embedded
agents:
  count: {type: wordcount, unit: words}
  report: {type: template, template: "{{ steps.count.output }}, approved: {{ input.approved }}"}
steps:
  - {name: count, agent: count}
  - kind: hitl
    name: approve
    message: "Publish {{ input }}?"
    schema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
  - {name: report, agent: report}
)";

caudal::agent_reply count_words(const caudal::agent_call& call, const caudal::agent_spec& spec) {
  if (!call.input.is_string()) return caudal::agent_reply::failure("BadInput", "wants text");
  std::istringstream words{call.input.get<std::string>()};
  int n = 0;
  for (std::string word; words >> word; ++n)
    if (call.on_chunk) call.on_chunk(word);
  caudal::usage used;
  used.prompt_tokens = n;
  used.model = "counter-1";
  return caudal::agent_reply::success(
      std::to_string(n) + " " + spec.config.at("unit").get<std::string>(), used);
}

// Events arrive on engine threads, one at a time per run.
void print_event(const caudal::run_event& e) {
  static std::mutex out;
  std::lock_guard lock{out};
  switch (e.kind) {
    case caudal::event_kind::chunk:
      std::cout << "  chunk " << e.path << ": " << e.data.at("text").get<std::string>() << '\n';
      break;
    case caudal::event_kind::step_finished:
      std::cout << "  step " << e.path << ": " << e.data.at("status").get<std::string>() << '\n';
      break;
    case caudal::event_kind::paused:
      std::cout << "  paused " << e.path << ": " << e.data.at("message").get<std::string>()
                << '\n';
      break;
    default:
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: caudal_embedder DB_DIR\n";
    return 2;
  }
  caudal::engine eng;
  caudal::function_kind_options options;
  options.keys["unit"] = {caudal::config_type::string, true};
  options.is_blocking = false;  // it never waits: it may run on the scheduler
  options.reads_context = false;
  options.reads_steps = false;
  eng.agents().add("wordcount", caudal::function_agent_kind(count_words, options));

  if (auto refused = eng.open_database(argv[1])) {
    std::cerr << *refused << '\n';
    return 5;
  }
  auto loaded = eng.load_text(pipeline_yaml, "embedded.yaml");
  if (!loaded.ok()) {
    for (const auto& d : loaded.errors) std::cerr << d.to_string() << '\n';
    return 2;
  }

  caudal::run_request request;
  request.pipeline = loaded.pipeline;
  request.input = "the quick brown fox";
  request.on_event = print_event;
  std::cout << "run:\n";
  auto first = eng.run(request);
  std::cout << "status: " << to_string(first.status) << ", tokens: " << first.usage.total_tokens()
            << '\n';
  if (first.status != caudal::run_status::paused) return 1;

  caudal::resume_request answer;
  answer.run_id = first.run_id;
  answer.answer = caudal::value{{"approved", true}};
  answer.on_event = print_event;
  std::cout << "resume:\n";
  auto resumed = eng.resume(answer);
  if (!resumed.handle) {
    std::cerr << resumed.message << '\n';
    return 1;
  }
  auto done = resumed.handle->wait();
  std::cout << "status: " << to_string(done.status) << "\noutput: "
            << done.output.get<std::string>() << '\n';
  return done.status == caudal::run_status::completed ? 0 : 1;
}
