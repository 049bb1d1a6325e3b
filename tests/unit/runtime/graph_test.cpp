// `caudal graph`'s renderers: golden files for the examples and for a pipeline
// nesting every construct (tests/fixtures/graph/), plus structural facts that
// hold whatever the layout: first lines, labels, balanced blocks, unique ids.
//
// To rewrite the goldens after an intended change, run the tests with
// CAUDAL_UPDATE_GOLDENS=1, then read the diff.
#include "runtime/graph.hpp"

#include <cctype>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "runtime/loader.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {
namespace {

const std::string fixtures = std::string{CAUDAL_FIXTURES_DIR} + "/graph/";

std::shared_ptr<const pipeline> load(const std::string& path) {
  static auto registry = agent_registry::with_builtins(make_posix_process_runner());
  auto result = load_pipeline_file(path, *registry);
  for (const auto& d : result.errors) ADD_FAILURE() << d.to_string();
  return result.pipeline;
}

std::string read_text(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void expect_golden(const std::string& actual, const std::string& golden) {
  if (std::getenv("CAUDAL_UPDATE_GOLDENS") != nullptr) {
    std::ofstream{golden, std::ios::binary} << actual;
    return;
  }
  EXPECT_EQ(actual, read_text(golden)) << "golden: " << golden;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string trimmed(const std::string& line) {
  auto first = line.find_first_not_of(' ');
  return first == std::string::npos ? "" : line.substr(first);
}

// The text of every "quoted" string outside `%%` comments, escapes left as written.
std::vector<std::string> quoted_strings(const std::string& diagram) {
  std::string text;
  for (const auto& line : lines_of(diagram))
    if (trimmed(line).rfind("%%", 0) != 0) text += line + "\n";
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '"') continue;
    std::string s;
    for (++i; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) s += text[i++];
      s += text[i];
    }
    out.push_back(s);
  }
  return out;
}

void collect_names(const step_list& steps, std::vector<std::string>& names) {
  for (const auto& step : steps) {
    names.push_back(step.name);
    for (auto* f = step.fallback.get(); f != nullptr; f = f->fallback.get())
      names.push_back(f->name);
    collect_names(step.body, names);
    for (const auto& [key, branch] : step.branches) collect_names(branch, names);
    if (step.default_branch) collect_names(*step.default_branch, names);
  }
}

void expect_every_name_labelled(const pipeline& p, const std::string& diagram) {
  std::vector<std::string> names;
  collect_names(p.steps, names);
  auto labels = quoted_strings(diagram);
  for (const auto& name : names) {
    bool is_labelled = false;
    for (const auto& label : labels) is_labelled = is_labelled || label.find(name) != label.npos;
    EXPECT_TRUE(is_labelled) << "no label names step '" << name << "'";
  }
}

// Mermaid: `flowchart TD` first, every `subgraph` closed by its own `end`, and
// each node declared once.
void expect_valid_mermaid(const std::string& diagram) {
  auto lines = lines_of(diagram);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "flowchart TD");
  int depth = 0;
  std::set<std::string> ids;
  for (size_t i = 1; i < lines.size(); ++i) {
    auto line = trimmed(lines[i]);
    if (line.rfind("subgraph ", 0) == 0) ++depth;
    if (line == "end") {
      EXPECT_GE(--depth, 0) << "line " << i + 1;
    }
    bool is_statement = line.find("-->") != line.npos || line.find("-.->") != line.npos ||
                        line.rfind("subgraph", 0) == 0 || line.rfind("class", 0) == 0 ||
                        line.rfind("%%", 0) == 0 || line == "end";
    if (is_statement) continue;
    auto id = line.substr(0, line.find_first_of("[({"));
    EXPECT_TRUE(ids.insert(id).second) << "node declared twice: " << id;
  }
  EXPECT_EQ(depth, 0);
}

// DOT: `digraph` first, braces balanced outside quoted strings, each node
// declared once.
void expect_valid_dot(const std::string& diagram) {
  EXPECT_EQ(diagram.rfind("digraph ", 0), 0u);
  int depth = 0;
  bool is_quoted = false;
  for (size_t i = 0; i < diagram.size(); ++i) {
    char c = diagram[i];
    if (is_quoted && c == '\\') ++i;
    if (c == '"') is_quoted = !is_quoted;
    if (is_quoted) continue;
    if (c == '{') ++depth;
    if (c == '}') {
      EXPECT_GE(--depth, 0) << "at byte " << i;
    }
  }
  EXPECT_FALSE(is_quoted);
  EXPECT_EQ(depth, 0);
  std::set<std::string> ids;
  for (const auto& raw : lines_of(diagram)) {
    auto line = trimmed(raw);
    if (line.find(" [label=") == line.npos || line.find(" -> ") != line.npos ||
        line.rfind("graph ", 0) == 0)
      continue;
    auto id = line.substr(0, line.find(' '));
    EXPECT_TRUE(ids.insert(id).second) << "node declared twice: " << id;
  }
}

class GraphGolden : public testing::TestWithParam<std::string> {};

TEST_P(GraphGolden, MermaidMatchesGoldenAndIsWellFormed) {
  auto p = load(GetParam());
  ASSERT_NE(p, nullptr);
  auto diagram = render_mermaid(*p);
  auto stem = std::filesystem::path{GetParam()}.stem().string();
  expect_golden(diagram, fixtures + stem + ".mmd");
  expect_valid_mermaid(diagram);
  expect_every_name_labelled(*p, diagram);
  EXPECT_EQ(render_mermaid(*load(GetParam())), diagram) << "not deterministic";
}

TEST_P(GraphGolden, DotMatchesGoldenAndIsWellFormed) {
  auto p = load(GetParam());
  ASSERT_NE(p, nullptr);
  auto diagram = render_dot(*p);
  auto stem = std::filesystem::path{GetParam()}.stem().string();
  expect_golden(diagram, fixtures + stem + ".dot");
  expect_valid_dot(diagram);
  expect_every_name_labelled(*p, diagram);
  EXPECT_EQ(render_dot(*load(GetParam())), diagram) << "not deterministic";
}

// Every example (a new one fails until its goldens exist), and the fixture
// that nests every construct.
std::vector<std::string> golden_pipelines() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator{CAUDAL_EXAMPLES_DIR})
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  files.push_back(fixtures + "every_construct.yaml");
  return files;
}

INSTANTIATE_TEST_SUITE_P(Graph, GraphGolden, testing::ValuesIn(golden_pipelines()),
                         [](const auto& info) {
                           return std::filesystem::path{info.param}.stem().string();
                         });

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != text.npos;
}

TEST(GraphShapes, EveryConstructIsDrawnAsSuch) {
  auto p = load(fixtures + "every_construct.yaml");
  ASSERT_NE(p, nullptr);
  auto m = render_mermaid(*p);
  EXPECT_TRUE(contains(m, "subgraph g_refine[\"loop refine (max 5)\"]")) << m;
  EXPECT_TRUE(contains(m, "n_refine__score -->|\"until #35;output #gt; 0")) << m;
  EXPECT_TRUE(contains(m, "subgraph g_refine__fan__b[\"b\"]")) << m;
  EXPECT_TRUE(contains(m, "n_refine__fan{{\"parallel fan\"}}")) << m;
  EXPECT_TRUE(contains(m, "[\"map each over context.items or {'#lt;none#gt;'}\"]")) << m;
  EXPECT_TRUE(contains(m, "n_route{\"route#58; local lang = context.lang or #quot;en#quot;")) << m;
  EXPECT_TRUE(contains(m, "n_route -->|\"default\"| n_route__default__fallthrough")) << m;
  EXPECT_TRUE(contains(m, "n_route -->|\"skip\"| c_route__join")) << m;
  EXPECT_TRUE(contains(m, "n_approve[/\"approve\"/]")) << m;
  auto d = render_dot(*p);
  EXPECT_TRUE(contains(d, "subgraph cluster_g_refine {")) << d;
  EXPECT_TRUE(contains(d, "n_route [label=\"route: local lang = context.lang or \\\"en\\\"")) << d;
  EXPECT_TRUE(contains(d, ", shape=diamond];")) << d;
  EXPECT_TRUE(contains(d, "n_approve [label=\"approve\", shape=parallelogram];")) << d;
  EXPECT_TRUE(contains(d, "until #output &gt; 0 and output ~= \\\"done\\\" and (1 &amp; 1)")) << d;
}

TEST(GraphShapes, FallbackChainEndsAtTheSiblingItNames) {
  auto p = load(fixtures + "every_construct.yaml");
  ASSERT_NE(p, nullptr);
  auto m = render_mermaid(*p);
  EXPECT_TRUE(contains(m, "n_draft -.->|\"fallback\"| n_draft_retry\n")) << m;
  EXPECT_TRUE(contains(m, "n_draft_retry -.->|\"fallback\"| n_backup\n")) << m;
  EXPECT_TRUE(contains(m, "class n_draft_retry fallback\n")) << m;
  auto d = render_dot(*p);
  EXPECT_TRUE(contains(d, "n_draft_retry [label=\"draft_retry\", style=dashed];")) << d;
  EXPECT_TRUE(contains(d, "n_draft_retry -> n_backup [label=\"fallback\", style=dashed];")) << d;
}

step_spec make_step(step_kind kind, std::string name) {
  step_spec step;
  step.kind = kind;
  step.name = std::move(name);
  return step;
}

// Hand-built models reach shapes the loader refuses: empty bodies and
// branch lists, and paths whose ids would clash.
pipeline odd_pipeline() {
  pipeline p;
  p.name = "odd";
  auto loop = make_step(step_kind::loop, "a");
  loop.body.push_back(make_step(step_kind::step, "b"));
  p.steps.push_back(std::move(loop));
  p.steps.push_back(make_step(step_kind::step, "a__b"));
  p.steps.push_back(make_step(step_kind::loop, "empty_loop"));
  p.steps.push_back(make_step(step_kind::map, "empty_map"));
  auto fan = make_step(step_kind::parallel, "fan");
  fan.branches.push_back({"none", {}});
  p.steps.push_back(std::move(fan));
  p.steps.push_back(make_step(step_kind::parallel, "no_branches"));
  p.steps.push_back(make_step(step_kind::conditional, "no_choice"));
  return p;
}

TEST(GraphEdgeCases, EmptyListsAndClashingIdsStayValid) {
  auto p = odd_pipeline();
  auto m = render_mermaid(p);
  expect_valid_mermaid(m);
  expect_every_name_labelled(p, m);
  EXPECT_TRUE(contains(m, "n_a__b[\"b\"]")) << m;
  EXPECT_TRUE(contains(m, "n_a__b_2[\"a__b\"]")) << m;
  EXPECT_TRUE(contains(m, "c_empty_loop__empty -->|\"repeat\"| c_empty_loop__empty")) << m;
  EXPECT_TRUE(contains(m, "n_fan -->|\"none\"| c_fan__join")) << m;
  EXPECT_TRUE(contains(m, "n_no_branches --> c_no_branches__join")) << m;
  auto d = render_dot(p);
  expect_valid_dot(d);
  expect_every_name_labelled(p, d);
}

TEST(GraphEdgeCases, AnEmptyPipelineIsStartToEnd) {
  pipeline p;
  p.name = "nothing";
  EXPECT_EQ(render_mermaid(p),
            "flowchart TD\n  %% pipeline \"nothing\"\n  c_start([\"start\"])\n  c_end([\"end\"])\n"
            "  c_start --> c_end\n");
  EXPECT_EQ(render_dot(p),
            "digraph \"nothing\" {\n  graph [label=\"nothing\", labelloc=t];\n"
            "  node [shape=box];\n  c_start [label=\"start\", shape=oval];\n"
            "  c_end [label=\"end\", shape=oval];\n  c_start -> c_end;\n}\n");
}

// Every `#` in a Mermaid label starts an entity code such as `#quot;` or `#35;`.
bool is_entity_coded(const std::string& label) {
  for (auto hash = label.find('#'); hash != label.npos; hash = label.find('#', hash + 1)) {
    auto end = hash + 1;
    while (end < label.size() && std::isalnum(static_cast<unsigned char>(label[end]))) ++end;
    if (end == hash + 1 || end == label.size() || label[end] != ';') return false;
  }
  return true;
}

TEST(GraphEscaping, LabelsCannotBreakEitherSyntax) {
  pipeline p;
  p.name = "q\"uote\\";
  auto route = make_step(step_kind::conditional, "route");
  route.condition.text = "x:find(\"a|b\") .. `#` .. '<&>' .. \"\xc3\xa9\"";
  route.branches.push_back({"k\"|]}", {make_step(step_kind::step, "s")}});
  p.steps.push_back(std::move(route));
  auto m = render_mermaid(p);
  expect_valid_mermaid(m);
  for (const auto& label : quoted_strings(m)) {
    EXPECT_EQ(label.find_first_of("<>&|`:"), label.npos) << label;
    EXPECT_TRUE(is_entity_coded(label)) << label;
  }
  EXPECT_TRUE(contains(m,
                       "\"route#58; x#58;find(#quot;a#124;b#quot;) .. #96;#35;#96; .. "
                       "'#lt;#amp;#gt;' .. #quot;\xc3\xa9#quot;\""))
      << m;
  EXPECT_TRUE(contains(m, "n_route -->|\"k#quot;#124;]}\"| n_route__k______s")) << m;
  auto d = render_dot(p);
  expect_valid_dot(d);
  EXPECT_TRUE(contains(d, "digraph \"q\\\"uote\\\\\" {")) << d;
  EXPECT_TRUE(contains(d,
                       "\"route: x:find(\\\"a|b\\\") .. `#` .. '&lt;&amp;&gt;' .. "
                       "\\\"\xc3\xa9\\\"\""))
      << d;
}

// Mermaid reads `direction LR` anywhere on a line as a statement, and `%%{`
// anywhere as a directive; neither may survive in a label.
TEST(GraphEscaping, MermaidKeywordsInLabelsAreDefused) {
  pipeline p;
  p.name = "keywords";
  auto route = make_step(step_kind::conditional, "route");
  route.condition.text = "context.direction";
  route.branches.push_back({"sort direction LR %%{init: {}}%%", {make_step(step_kind::step, "s")}});
  p.steps.push_back(std::move(route));
  auto m = render_mermaid(p);
  expect_valid_mermaid(m);
  for (const auto& label : quoted_strings(m)) EXPECT_FALSE(contains(label, "direction")) << label;
  EXPECT_FALSE(contains(m, "%%{")) << m;
  EXPECT_TRUE(contains(m, "|\"sort directio#110; LR #37;#37;{init#58; {}}#37;#37;\"|")) << m;
  EXPECT_TRUE(contains(m, "n_route{\"route#58; context.directio#110;\"}")) << m;
}

TEST(GraphEscaping, LongAndMultiLineCodeIsOneShortLine) {
  pipeline p;
  p.name = "long";
  auto loop = make_step(step_kind::loop, "l");
  loop.max_loops = 2;
  loop.exit_when.text = "\n  local n =\t1\n  return " + std::string(70, 'x') + "\n";
  loop.body.push_back(make_step(step_kind::step, "s"));
  p.steps.push_back(std::move(loop));
  EXPECT_TRUE(contains(render_mermaid(p),
                       "|\"until local n = 1 return " + std::string(41, 'x') + "...\"|"));
}

TEST(GraphEscaping, CutsLongCodeOnACharacterBoundary) {
  pipeline p;
  p.name = "utf8";
  auto map = make_step(step_kind::map, "m");
  map.over.text = std::string(59, 'x') + "\xc3\xa9" + "tail";  // é straddles byte 60
  map.body.push_back(make_step(step_kind::step, "s"));
  p.steps.push_back(std::move(map));
  EXPECT_TRUE(contains(render_dot(p), "label=\"map m over " + std::string(59, 'x') + "...\";"));
}

}  // namespace
}  // namespace caudal
