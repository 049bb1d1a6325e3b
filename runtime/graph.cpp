#include "runtime/graph.hpp"

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace caudal {

namespace {

// -- the diagram, independent of its syntax -----------------------------------

enum class node_shape { terminal, step, hitl, fallback, decision, fork, join };
enum class edge_style { flow, back, fallback };

struct graph_node {
  std::string id;
  std::string label;
  node_shape shape;
};

struct graph_edge {
  std::string from;
  std::string to;
  std::string label;
  edge_style style;
};

struct graph_member {
  bool is_group;
  size_t index;  ///< into flow_graph::groups or flow_graph::nodes
};

struct graph_group {
  std::string id;
  std::string label;
  std::vector<graph_member> members;  ///< in drawing order
};

struct flow_graph {
  std::string name;
  std::vector<graph_node> nodes;
  std::vector<graph_group> groups;  ///< groups[0] is the whole diagram
  std::vector<graph_edge> edges;
};

/// Where the flow enters and leaves what was drawn for a step or a list.
struct fragment {
  std::string entry;
  std::string exit;
};

struct branch_ref {
  std::string key;
  const step_list* steps;
};

constexpr size_t max_code_label = 60;
constexpr int max_fallback_walk = 64;  // the loader allows 10; a hand-built cycle stops here

// `refine/score` -> `n_refine__score`; ids hold only [A-Za-z0-9_], which both
// syntaxes take unquoted.
std::string safe_id(std::string_view prefix, std::string_view path) {
  std::string id{prefix};
  for (char c : path) {
    bool is_kept = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    id += c == '/' ? std::string_view{"__"} : is_kept ? std::string_view{&c, 1} : "_";
  }
  return id;
}

// Labels stay on one line: control characters become spaces.
std::string printable(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = ' ';
  return out;
}

// Lua code on one line: whitespace and control characters collapse to one
// space, and long code is cut on a UTF-8 character boundary.
std::string one_line(std::string_view code) {
  std::string out;
  bool is_space_pending = false;
  for (unsigned char c : code) {
    if (c <= ' ' || c == 0x7f) {
      is_space_pending = !out.empty();
      continue;
    }
    if (is_space_pending) out += ' ';
    is_space_pending = false;
    out += static_cast<char>(c);
  }
  if (out.size() <= max_code_label) return out;
  size_t cut = max_code_label;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  return out.substr(0, cut) + "...";
}

// Walks the step tree and lays out nodes, groups and edges in a fixed order:
// edges come in the order the flow takes them.
class graph_builder {
 public:
  flow_graph build(const pipeline& p) {
    graph_.name = p.name;
    graph_.groups.push_back({"", p.name, {}});
    auto start = add_node(0, "c_start", "start", node_shape::terminal);
    auto chain = draw_list(p.steps, "", 0, {start, ""});
    auto end = add_node(0, "c_end", "end", node_shape::terminal);
    edge(chain ? chain->exit : start, end);
    return std::move(graph_);
  }

 private:
  /// The edge about to enter what is drawn next; `from` empty: none.
  struct inflow {
    std::string from;
    std::string label;
  };

  std::string unique(const std::string& id) {
    auto candidate = id;
    for (int n = 2; !used_ids_.insert(candidate).second; ++n)
      candidate = id + "_" + std::to_string(n);
    return candidate;
  }

  // A node, entered by `in` when that comes from somewhere.
  std::string add_node(size_t group, const std::string& id, std::string label, node_shape shape,
                       const inflow& in = {}) {
    auto unique_id = unique(id);
    graph_.groups[group].members.push_back({false, graph_.nodes.size()});
    graph_.nodes.push_back({unique_id, std::move(label), shape});
    if (!in.from.empty()) edge(in.from, unique_id, in.label);
    return unique_id;
  }

  size_t add_group(size_t parent, const std::string& id, std::string label) {
    auto index = graph_.groups.size();
    graph_.groups.push_back({unique(id), std::move(label), {}});
    graph_.groups[parent].members.push_back({true, index});
    return index;
  }

  void edge(const std::string& from, const std::string& to, std::string label = {},
            edge_style style = edge_style::flow) {
    graph_.edges.push_back({from, to, std::move(label), style});
  }

  // The steps of one list chained in order, `in` entering the first; nullopt
  // (and no edge drawn) for an empty list.
  std::optional<fragment> draw_list(const step_list& steps, const std::string& prefix, size_t group,
                                    const inflow& in) {
    std::optional<fragment> chain;
    std::vector<std::string> entries;
    std::map<std::string, std::string> id_of_name;  // a fallback may name a sibling
    for (const auto& step : steps) {
      auto part = draw_step(step, prefix + step.name, group, chain ? inflow{chain->exit, ""} : in);
      entries.push_back(part.entry);
      id_of_name.emplace(step.name, part.entry);
      chain = fragment{chain ? chain->entry : part.entry, part.exit};
    }
    // After the whole list, so that a fallback naming a later sibling finds its node.
    for (size_t i = 0; i < steps.size(); ++i)
      draw_fallbacks(steps[i], entries[i], id_of_name, prefix, group);
    return chain;
  }

  void draw_fallbacks(const step_spec& step, std::string from,
                      const std::map<std::string, std::string>& id_of_name,
                      const std::string& prefix, size_t group) {
    const step_spec* fallback = step.fallback.get();
    for (int depth = 0; fallback != nullptr && depth < max_fallback_walk; ++depth) {
      if (auto sibling = id_of_name.find(fallback->name); sibling != id_of_name.end()) {
        edge(from, sibling->second, "fallback", edge_style::fallback);
        return;  // the sibling draws the rest of its own chain
      }
      auto id =
          add_node(group, node_id(prefix + fallback->name), fallback->name, node_shape::fallback);
      edge(from, id, "fallback", edge_style::fallback);
      from = id;
      fallback = fallback->fallback.get();
    }
  }

  fragment draw_step(const step_spec& step, const std::string& path, size_t group,
                     const inflow& in) {
    if (step.kind == step_kind::loop || step.kind == step_kind::map)
      return draw_body_group(step, path, group, in);
    if (step.kind == step_kind::parallel || step.kind == step_kind::conditional)
      return draw_split(step, path, group, in);
    auto shape = step.kind == step_kind::hitl ? node_shape::hitl : node_shape::step;
    auto id = add_node(group, node_id(path), step.name, shape, in);
    return {id, id};
  }

  static std::string node_id(const std::string& path) { return safe_id("n_", path); }

  fragment draw_body(const step_list& body, const std::string& path, size_t group,
                     const inflow& in) {
    if (auto chain = draw_list(body, path + "/", group, in)) return *chain;
    // A loaded pipeline never has an empty body; a hand-built one still draws.
    auto id = add_node(group, safe_id("c_", path + "/empty"), "(empty)", node_shape::step, in);
    return {id, id};
  }

  // A loop (with its back edge) or a map: a subgraph holding the body.
  fragment draw_body_group(const step_spec& step, const std::string& path, size_t group,
                           const inflow& in) {
    bool is_loop = step.kind == step_kind::loop;
    auto label = (is_loop ? "loop " : "map ") + step.name;
    if (is_loop) label += " (max " + std::to_string(step.max_loops) + ")";
    if (!is_loop && !step.over.empty()) label += " over " + one_line(step.over.text);
    auto body = draw_body(step.body, path, add_group(group, safe_id("g_", path), label), in);
    if (is_loop)
      edge(body.exit, body.entry,
           step.exit_when.empty() ? "repeat" : "until " + one_line(step.exit_when.text),
           edge_style::back);
    return body;
  }

  // A parallel step (fork node) or a conditional (decision node), then its branches.
  fragment draw_split(const step_spec& step, const std::string& path, size_t group,
                      const inflow& in) {
    bool is_parallel = step.kind == step_kind::parallel;
    auto split =
        is_parallel
            ? add_node(group, node_id(path), "parallel " + step.name, node_shape::fork, in)
            : add_node(group, node_id(path), step.name + ": " + one_line(step.condition.text),
                       node_shape::decision, in);
    std::vector<branch_ref> branches;
    for (const auto& [key, steps] : step.branches) branches.push_back({key, &steps});
    if (step.default_branch) branches.push_back({"default", &*step.default_branch});
    return draw_branches(branches, split, path, group, is_parallel);
  }

  // Every branch leaves `split` and ends at a new join node. A parallel branch
  // (`is_grouped`) is a subgraph named after its key; a conditional branch is
  // named by the label of the edge entering it. An empty branch is one edge
  // from `split` to the join, labelled with its key.
  fragment draw_branches(const std::vector<branch_ref>& branches, const std::string& split,
                         const std::string& path, size_t group, bool is_grouped) {
    std::vector<inflow> into_join;
    for (const auto& branch : branches) {
      auto branch_path = path + "/" + branch.key;
      auto inner = is_grouped && !branch.steps->empty()
                       ? add_group(group, safe_id("g_", branch_path), branch.key)
                       : group;
      inflow in{split, is_grouped ? "" : branch.key};
      auto chain = draw_list(*branch.steps, branch_path + "/", inner, in);
      into_join.push_back(chain ? inflow{chain->exit, ""} : inflow{split, branch.key});
    }
    if (branches.empty()) into_join.push_back({split, ""});
    auto join = add_node(group, safe_id("c_", path + "/join"), "join", node_shape::join);
    for (auto& in : into_join) edge(in.from, join, std::move(in.label));
    return {split, join};
  }

  flow_graph graph_;
  std::set<std::string> used_ids_;
};

// -- Mermaid -------------------------------------------------------------------

// Quoted Mermaid text: entity codes (`#quot;`, `#35;`...) for every character
// the syntax, its preprocessing (`%%` directives) or the HTML of its labels
// would read. Two lexer traps need more: a line holding `direction LR` (or TB,
// BT, RL) anywhere is read as a direction statement, so the `n` ending
// `direction` is coded; and Mermaid drops the last `;` of a line matching
// `style.*:\S*#.*;` before decoding entities, so a label holding an entity
// holds no raw `:` either.
std::string mermaid_text(std::string_view text) {
  static const std::map<char, std::string_view> entities{
      {'"', "#quot;"}, {'<', "#lt;"},  {'>', "#gt;"}, {'&', "#amp;"},
      {'#', "#35;"},   {'|', "#124;"}, {'`', "#96;"}, {'%', "#37;"}};
  std::string out;
  for (char c : printable(text)) {
    auto e = entities.find(c);
    out += e == entities.end() ? std::string_view{&c, 1} : e->second;
  }
  for (auto at = out.find("direction"); at != std::string::npos; at = out.find("direction", at))
    out.replace(at += 8, 1, "#110;");
  if (out.find('#') == std::string::npos) return '"' + out + '"';
  std::string safe;
  for (char c : out) safe += c == ':' ? std::string_view{"#58;"} : std::string_view{&c, 1};
  return '"' + safe + '"';
}

std::string mermaid_node(const graph_node& n) {
  // Indexed by node_shape: terminal, step, hitl, fallback, decision, fork, join.
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> brackets{
      {{"([", "])"}, {"[", "]"}, {"[/", "/]"}, {"[", "]"}, {"{", "}"}, {"{{", "}}"}, {"((", "))"}}};
  const auto& [open, close] = brackets[static_cast<size_t>(n.shape)];
  return n.id + std::string{open} + mermaid_text(n.label) + std::string{close};
}

std::string mermaid_edge(const graph_edge& e) {
  std::string arrow = e.style == edge_style::fallback ? "-.->" : "-->";
  if (!e.label.empty()) arrow += "|" + mermaid_text(e.label) + "|";
  return e.from + " " + arrow + " " + e.to;
}

std::string mermaid_subgraph(const graph_group& group, const std::string&) {
  return "subgraph " + group.id + "[" + mermaid_text(group.label) + "]";
}

// -- Graphviz ------------------------------------------------------------------

// Quoted DOT text. Graphviz decodes HTML entities and backslash escapes in
// labels, so `&` and `\` are escaped too, to print as written.
std::string dot_text(std::string_view text) {
  static const std::map<char, std::string_view> escapes{
      {'"', "\\\""}, {'\\', "\\\\"}, {'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}};
  std::string out = "\"";
  for (char c : printable(text)) {
    auto e = escapes.find(c);
    out += e == escapes.end() ? std::string_view{&c, 1} : e->second;
  }
  return out + '"';
}

std::string dot_node(const graph_node& n) {
  // Indexed by node_shape: terminal, step, hitl, fallback, decision, fork, join.
  static constexpr std::array<std::string_view, 7> attributes{
      ", shape=oval",          "",
      ", shape=parallelogram", ", style=dashed",
      ", shape=diamond",       ", shape=hexagon",
      ", shape=circle"};
  return n.id + " [label=" + dot_text(n.label) +
         std::string{attributes[static_cast<size_t>(n.shape)]} + "];";
}

std::string dot_edge(const graph_edge& e) {
  std::vector<std::string> attributes;
  if (!e.label.empty()) attributes.push_back("label=" + dot_text(e.label));
  if (e.style == edge_style::fallback) attributes.push_back("style=dashed");
  if (e.style == edge_style::back) attributes.push_back("constraint=false");
  std::string line = e.from + " -> " + e.to;
  for (size_t i = 0; i < attributes.size(); ++i) line += (i == 0 ? " [" : ", ") + attributes[i];
  return line + (attributes.empty() ? ";" : "];");
}

std::string dot_subgraph(const graph_group& group, const std::string& indent) {
  return "subgraph cluster_" + group.id + " {\n" + indent + "  label=" + dot_text(group.label) +
         ";";
}

/// How a syntax writes a node, and opens and closes a subgraph.
struct syntax {
  std::string (*node)(const graph_node&);
  std::string (*open)(const graph_group&, const std::string& indent);
  std::string_view close;
};

void write_group(const flow_graph& g, size_t index, const syntax& s, std::string& out,
                 int depth = 1) {
  std::string indent(2 * depth, ' ');
  for (const auto& member : g.groups[index].members) {
    if (!member.is_group) {
      out += indent + s.node(g.nodes[member.index]) + "\n";
      continue;
    }
    out += indent + s.open(g.groups[member.index], indent) + "\n";
    write_group(g, member.index, s, out, depth + 1);
    out += indent + std::string{s.close} + "\n";
  }
}

}  // namespace

std::string render_mermaid(const pipeline& p) {
  auto g = graph_builder{}.build(p);
  std::string out = "flowchart TD\n";
  out += "  %% pipeline " + mermaid_text(g.name) + "\n";
  write_group(g, 0, {mermaid_node, mermaid_subgraph, "end"}, out);
  for (const auto& e : g.edges) out += "  " + mermaid_edge(e) + "\n";
  std::string fallbacks;
  for (const auto& n : g.nodes)
    if (n.shape == node_shape::fallback) fallbacks += (fallbacks.empty() ? "" : ",") + n.id;
  if (!fallbacks.empty())
    out += "  classDef fallback stroke-dasharray: 5 5\n  class " + fallbacks + " fallback\n";
  return out;
}

std::string render_dot(const pipeline& p) {
  auto g = graph_builder{}.build(p);
  std::string out = "digraph " + dot_text(g.name) + " {\n";
  out += "  graph [label=" + dot_text(g.name) + ", labelloc=t];\n";
  out += "  node [shape=box];\n";
  write_group(g, 0, {dot_node, dot_subgraph, "}"}, out);
  for (const auto& e : g.edges) out += "  " + dot_edge(e) + "\n";
  return out + "}\n";
}

}  // namespace caudal
