#pragma once
/// Pipelines as diagrams (`caudal graph`, SPEC §7): a Mermaid flowchart or a
/// Graphviz digraph drawn from a loaded pipeline. Pure functions of the model:
/// any thread may call them, and the same pipeline always gives byte-identical
/// text.
///
/// What is drawn, in both syntaxes:
/// - the top-level steps as a chain of edges from a `start` node to an `end` node;
/// - a simple step as a box, a `hitl` step as a parallelogram;
/// - a loop as a subgraph `loop <name> (max <N>)` holding its body chain, with a
///   back edge from the body's last node to its first labelled `until <exit_when>`;
/// - a map as a subgraph `map <name> over <over>` holding its body chain;
/// - a parallel step as a fork node `parallel <name>`, one subgraph per branch
///   (labelled with the branch name) and a `join` node;
/// - a conditional as a decision node `<name>: <condition>` with one edge per
///   branch key (and `default`), the branches meeting at a `join` node; an
///   empty branch is an edge from the decision straight to the join;
/// - a fallback as a dashed edge labelled `fallback` to the fallback step, along
///   the whole chain; a fallback naming a sibling step points at that step's node.
///
/// Node ids come from step paths (`n_refine__score` for step `score` in the body
/// of `refine`; `c_` for drawn-only nodes such as `c_start` and joins, `g_` for
/// subgraphs); a clash gets a `_2`, `_3`... suffix. Labels are step names; Lua
/// code in labels is put on one line, cut after 60 bytes (with `...`) and
/// escaped for the syntax, so no label can break the diagram.

#include <string>

#include "runtime/model.hpp"

namespace caudal {

/// The pipeline as a Mermaid flowchart; the first line is `flowchart TD`.
std::string render_mermaid(const pipeline& p);

/// The pipeline as a Graphviz digraph; the first line starts with `digraph`.
std::string render_dot(const pipeline& p);

}  // namespace caudal
