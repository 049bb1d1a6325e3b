#include "runtime/graph.hpp"

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

bool is_id_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// `refine/score` -> `n_refine__score`; ids hold only [A-Za-z0-9_], which both
// syntaxes take unquoted.
std::string safe_id(std::string_view prefix, std::string_view path) {
  std::string id{prefix};
  for (unsigned char c : path) {
    if (c == '/')
      id += "__";
    else
      id += is_id_char(c) ? static_cast<char>(c) : '_';
  }
  return id;
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

// Walks the step tree and lays out nodes, groups and edges in a fixed order.
class graph_builder {
 public:
  flow_graph build(const pipeline& p) {
    graph_.name = p.name;
    graph_.groups.push_back({"", p.name, {}});
    auto start = add_node(0, "c_start", "start", node_shape::terminal);
    auto chain = draw_list(p.steps, "", 0);
    auto end = add_node(0, "c_end", "end", node_shape::terminal);
    edge(start, chain ? chain->entry : end);
    if (chain) edge(chain->exit, end);
    return std::move(graph_);
  }

 private:
  std::string unique(const std::string& id) {
    auto candidate = id;
    for (int n = 2; !used_ids_.insert(candidate).second; ++n) candidate = id + "_" + std::to_string(n);
    return candidate;
  }

  std::string add_node(size_t group, const std::string& id, std::string label, node_shape shape) {
    auto unique_id = unique(id);
    graph_.groups[group].members.push_back({false, graph_.nodes.size()});
    graph_.nodes.push_back({unique_id, std::move(label), shape});
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

  // The steps of one list chained in order; nullopt for an empty list.
  std::optional<fragment> draw_list(const step_list& steps, const std::string& prefix,
                                    size_t group) {
    std::optional<fragment> chain;
    std::vector<std::string> entries;
    std::map<std::string, std::string> id_of_name;  // a fallback may name a sibling
    for (const auto& step : steps) {
      auto part = draw_step(step, prefix + step.name, group);
      entries.push_back(part.entry);
      id_of_name.emplace(step.name, part.entry);
      if (chain) edge(chain->exit, part.entry);
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
      auto id = add_node(group, safe_id("n_", prefix + fallback->name), fallback->name,
                         node_shape::fallback);
      edge(from, id, "fallback", edge_style::fallback);
      from = id;
      fallback = fallback->fallback.get();
    }
  }

  fragment draw_step(const step_spec& step, const std::string& path, size_t group) {
    switch (step.kind) {
      case step_kind::loop: return draw_loop(step, path, group);
      case step_kind::map: return draw_map(step, path, group);
      case step_kind::parallel: return draw_parallel(step, path, group);
      case step_kind::conditional: return draw_conditional(step, path, group);
      case step_kind::hitl: return single(add_node(group, node_id(path), step.name, node_shape::hitl));
      case step_kind::step: break;
    }
    return single(add_node(group, node_id(path), step.name, node_shape::step));
  }

  static std::string node_id(const std::string& path) { return safe_id("n_", path); }
  static fragment single(const std::string& id) { return {id, id}; }

  fragment draw_body(const step_list& body, const std::string& path, size_t group) {
    if (auto chain = draw_list(body, path + "/", group)) return *chain;
    // A loaded pipeline never has an empty body; a hand-built one still draws.
    return single(add_node(group, safe_id("c_", path + "/empty"), "(empty)", node_shape::step));
  }

  fragment draw_loop(const step_spec& step, const std::string& path, size_t group) {
    auto label = "loop " + step.name + " (max " + std::to_string(step.max_loops) + ")";
    auto body = draw_body(step.body, path, add_group(group, safe_id("g_", path), label));
    edge(body.exit, body.entry,
         step.exit_when.empty() ? "repeat" : "until " + one_line(step.exit_when.text),
         edge_style::back);
    return body;
  }

  fragment draw_map(const step_spec& step, const std::string& path, size_t group) {
    auto label = "map " + step.name;
    if (!step.over.empty()) label += " over " + one_line(step.over.text);
    return draw_body(step.body, path, add_group(group, safe_id("g_", path), label));
  }

  fragment draw_parallel(const step_spec& step, const std::string& path, size_t group) {
    auto fork = add_node(group, node_id(path), "parallel " + step.name, node_shape::fork);
    std::vector<branch_ref> branches;
    for (const auto& [key, steps] : step.branches) branches.push_back({key, &steps});
    return draw_branches(branches, fork, path, group, true);
  }

  fragment draw_conditional(const step_spec& step, const std::string& path, size_t group) {
    auto label = step.name + ": " + one_line(step.condition.text);
    auto decision = add_node(group, node_id(path), label, node_shape::decision);
    std::vector<branch_ref> branches;
    for (const auto& [key, steps] : step.branches) branches.push_back({key, &steps});
    if (step.default_branch) branches.push_back({"default", &*step.default_branch});
    return draw_branches(branches, decision, path, group, false);
  }

  // Every branch leaves `split` and ends at a new join node. A parallel branch
  // (`is_grouped`) is a subgraph named after its key; a conditional branch is
  // named by the label of the edge entering it. An empty branch is one edge
  // from `split` to the join, labelled with its key.
  fragment draw_branches(const std::vector<branch_ref>& branches, const std::string& split,
                         const std::string& path, size_t group, bool is_grouped) {
    std::vector<std::pair<std::string, std::string>> into_join;  // from, label
    for (const auto& branch : branches) {
      auto branch_path = path + "/" + branch.key;
      auto inner = is_grouped && !branch.steps->empty()
                       ? add_group(group, safe_id("g_", branch_path), branch.key)
                       : group;
      auto chain = draw_list(*branch.steps, branch_path + "/", inner);
      if (!chain) {
        into_join.emplace_back(split, branch.key);
        continue;
      }
      edge(split, chain->entry, is_grouped ? "" : branch.key);
      into_join.emplace_back(chain->exit, "");
    }
    auto join = add_node(group, safe_id("c_", path + "/join"), "join", node_shape::join);
    if (branches.empty()) edge(split, join);
    for (auto& [from, label] : into_join) edge(from, join, std::move(label));
    return {split, join};
  }

  flow_graph graph_;
  std::set<std::string> used_ids_;
};

// -- Mermaid -------------------------------------------------------------------

// Quoted Mermaid text: entity codes (`#quot;`, `#35;`...) for every character
// the syntax or the HTML of its labels would read. Mermaid drops the last `;`
// of a line matching `style.*:\S*#.*;` before decoding entities, so a label
// holding an entity holds no raw `:` either.
std::string mermaid_text(std::string_view text) {
  static const std::map<char, std::string_view> entities{
      {'"', "#quot;"}, {'<', "#lt;"},   {'>', "#gt;"}, {'&', "#amp;"},
      {'#', "#35;"},   {'|', "#124;"}, {'`', "#96;"}};
  std::string out;
  for (char c : text) {
    auto e = entities.find(c);
    out += e == entities.end() ? std::string_view{&c, 1} : e->second;
  }
  if (out.find('#') == std::string::npos) return '"' + out + '"';
  std::string safe;
  for (char c : out) safe += c == ':' ? std::string_view{"#58;"} : std::string_view{&c, 1};
  return '"' + safe + '"';
}

std::string mermaid_node(const graph_node& n) {
  auto text = mermaid_text(n.label);
  switch (n.shape) {
    case node_shape::terminal: return n.id + "([" + text + "])";
    case node_shape::hitl: return n.id + "[/" + text + "/]";
    case node_shape::decision: return n.id + "{" + text + "}";
    case node_shape::fork: return n.id + "{{" + text + "}}";
    case node_shape::join: return n.id + "((" + text + "))";
    case node_shape::step:
    case node_shape::fallback: break;
  }
  return n.id + "[" + text + "]";
}

std::string mermaid_edge(const graph_edge& e) {
  std::string arrow = e.style == edge_style::fallback ? "-.->" : "-->";
  if (!e.label.empty()) arrow += "|" + mermaid_text(e.label) + "|";
  return e.from + " " + arrow + " " + e.to;
}

void mermaid_group(const flow_graph& g, size_t index, int depth, std::string& out) {
  std::string indent(2 * depth, ' ');
  for (const auto& member : g.groups[index].members) {
    if (!member.is_group) {
      out += indent + mermaid_node(g.nodes[member.index]) + "\n";
      continue;
    }
    const auto& inner = g.groups[member.index];
    out += indent + "subgraph " + inner.id + " [" + mermaid_text(inner.label) + "]\n";
    mermaid_group(g, member.index, depth + 1, out);
    out += indent + "end\n";
  }
}

// -- Graphviz ------------------------------------------------------------------

// Quoted DOT text. Graphviz decodes HTML entities and backslash escapes in
// labels, so `&` and `\` are escaped too, to print as written.
std::string dot_text(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out + '"';
}

std::string dot_node(const graph_node& n) {
  std::string attributes = "label=" + dot_text(n.label);
  switch (n.shape) {
    case node_shape::terminal: attributes += ", shape=oval"; break;
    case node_shape::hitl: attributes += ", shape=parallelogram"; break;
    case node_shape::fallback: attributes += ", style=dashed"; break;
    case node_shape::decision: attributes += ", shape=diamond"; break;
    case node_shape::fork: attributes += ", shape=hexagon"; break;
    case node_shape::join: attributes += ", shape=circle"; break;
    case node_shape::step: break;
  }
  return n.id + " [" + attributes + "];";
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

void dot_group(const flow_graph& g, size_t index, int depth, std::string& out) {
  std::string indent(2 * depth, ' ');
  for (const auto& member : g.groups[index].members) {
    if (!member.is_group) {
      out += indent + dot_node(g.nodes[member.index]) + "\n";
      continue;
    }
    const auto& inner = g.groups[member.index];
    out += indent + "subgraph cluster_" + inner.id + " {\n";
    out += indent + "  label=" + dot_text(inner.label) + ";\n";
    dot_group(g, member.index, depth + 1, out);
    out += indent + "}\n";
  }
}

}  // namespace

std::string render_mermaid(const pipeline& p) {
  auto g = graph_builder{}.build(p);
  std::string out = "flowchart TD\n";
  out += "  %% pipeline " + one_line(g.name) + "\n";
  mermaid_group(g, 0, 1, out);
  std::string fallbacks;
  for (const auto& e : g.edges) out += "  " + mermaid_edge(e) + "\n";
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
  dot_group(g, 0, 1, out);
  for (const auto& e : g.edges) out += "  " + dot_edge(e) + "\n";
  return out + "}\n";
}

}  // namespace caudal
