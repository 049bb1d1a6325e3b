// Cluster files (`--cluster-file`, docs/cluster.md): the workers of a
// cluster and how this node reaches them, in YAML, checked key by key with
// the position of every mistake.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "caudal/cluster.hpp"
#include "runtime/diagnostics.hpp"

namespace caudal {

namespace {

namespace fs = std::filesystem;

constexpr const char* known_keys =
    "workers, tls, name, insecure, local_slots, wait_s, heartbeat_s, connection_timeout_s";

class cluster_file_reader {
 public:
  explicit cluster_file_reader(std::string path) : path_(std::move(path)) {}

  std::variant<cluster_options, std::string> read() {
    try {
      return read_file();
    } catch (const YAML::Exception& e) {  // whatever the checks below missed
      return at(e.mark) + e.msg;
    }
  }

 private:
  std::variant<cluster_options, std::string> read_file() {
    std::ifstream in{path_};
    if (!in) return path_ + ": cannot read the cluster file: " + std::strerror(errno);
    std::stringstream text;
    text << in.rdbuf();
    YAML::Node root = YAML::Load(text.str());  // a parse error: caught in read()
    if (!root.IsMap()) return path_ + ":1:1: a cluster file is a mapping (" + known_keys + ")";
    cluster_options out;
    bool has_workers = false;
    std::map<std::string, YAML::Mark> seen;
    for (const auto& entry : root) {
      if (!entry.first.IsScalar()) {
        error(entry.first, std::string{"a key must be a name ("} + known_keys + ")");
        continue;
      }
      auto key = entry.first.Scalar();
      const auto& value = entry.second;
      if (auto [first, is_new] = seen.emplace(key, entry.first.Mark()); !is_new) {
        error(entry.first, "'" + key + "' is given twice (first at line " +
                               std::to_string(first->second.line + 1) + ")");
        continue;
      }
      if (key == "workers") {
        has_workers = true;
        read_workers(value, out.workers);
      } else if (key == "tls") {
        if (auto dir = read_string(key, value)) out.tls_dir = resolve(*dir);
      } else if (key == "name") {
        if (auto name = read_string(key, value)) out.name = *name;
      } else if (key == "insecure") {
        if (auto b = read_scalar<bool>(key, value, "true or false")) out.is_insecure = *b;
        insecure_mark_ = value.Mark();
      } else if (key == "local_slots") {
        auto n = read_scalar<long long>(key, value, "a whole number");
        if (n && *n < 0) error(value, "local_slots must not be negative");
        else if (n) out.local_slots = static_cast<size_t>(*n);
      } else if (key == "wait_s") {
        auto s = read_seconds(key, value);
        if (s && *s < 0) error(value, "wait_s must not be negative");
        else if (s) out.wait_s = *s;
      } else if (key == "heartbeat_s") {
        if (auto s = read_positive(key, value)) out.heartbeat_s = *s;
      } else if (key == "connection_timeout_s") {
        if (auto s = read_positive(key, value)) {
          out.connection_timeout_s = *s;
          timeout_mark_ = value.Mark();
        }
      } else {
        error(entry.first, "unknown key '" + key + "' (a cluster file has " + known_keys + ")");
      }
    }
    if (!has_workers) error(root, "no 'workers': list the workers as HOST:PORT");
    if (out.is_insecure && !out.tls_dir.empty())
      error(insecure_mark_, "insecure and tls exclude each other: choose one");
    // Both in the file: they must fit (with flags, apply_cluster_flags
    // checks what results).
    if (errors_.empty() && seen.count("heartbeat_s") && seen.count("connection_timeout_s") &&
        out.connection_timeout_s <= out.heartbeat_s)
      error(timeout_mark_,
            "connection_timeout_s must be longer than heartbeat_s, or every peer is lost");
    if (!errors_.empty()) return errors_;
    return out;
  }

  // `file:line:col: ` (the form every load error takes, diagnostic).
  std::string at(const YAML::Mark& mark) const {
    diagnostic d;
    d.pos.file = path_;
    if (!mark.is_null()) d.pos = {path_, mark.line + 1, mark.column + 1};
    return d.to_string();
  }

  void error(const YAML::Mark& mark, const std::string& message) {
    if (!errors_.empty()) errors_ += '\n';
    errors_ += at(mark) + message;
  }
  void error(const YAML::Node& node, const std::string& message) { error(node.Mark(), message); }

  template <class T>
  std::optional<T> read_scalar(const std::string& key, const YAML::Node& node, const char* what) {
    if (node.IsScalar()) {
      try {
        return node.as<T>();
      } catch (const YAML::Exception&) {
      }
    }
    error(node, key + " must be " + what);
    return std::nullopt;
  }

  std::optional<std::string> read_string(const std::string& key, const YAML::Node& node) {
    auto s = read_scalar<std::string>(key, node, "a string");
    if (s && s->empty()) {
      error(node, key + " must not be empty");
      return std::nullopt;
    }
    return s;
  }

  std::optional<double> read_seconds(const std::string& key, const YAML::Node& node) {
    auto s = read_scalar<double>(key, node, "a number of seconds");
    if (s && !std::isfinite(*s)) {
      error(node, key + " must be a number of seconds");
      return std::nullopt;
    }
    return s;
  }

  std::optional<double> read_positive(const std::string& key, const YAML::Node& node) {
    auto s = read_seconds(key, node);
    if (s && *s <= 0) {
      error(node, key + " must be more than 0");
      return std::nullopt;
    }
    return s;
  }

  void read_workers(const YAML::Node& node, std::vector<std::string>& workers) {
    if (!node.IsSequence() || node.size() == 0) {
      error(node, "workers must be a list of HOST:PORT, one worker at least");
      return;
    }
    for (const auto& item : node) {
      auto text = read_scalar<std::string>("a worker", item, "HOST:PORT");
      if (!text) continue;
      auto parsed = parse_host_port(*text);
      if (auto* why = std::get_if<std::string>(&parsed))
        error(item, *why);
      else if (std::find(workers.begin(), workers.end(), *text) != workers.end())
        error(item, "worker " + *text + " is listed twice");
      else
        workers.push_back(*text);
    }
  }

  // A relative directory is the cluster file's neighbour, wherever the
  // command runs from.
  std::string resolve(const std::string& dir) const {
    fs::path p{dir};
    if (p.is_absolute()) return dir;
    return (fs::path(path_).parent_path() / p).lexically_normal().string();
  }

  std::string path_;
  std::string errors_;
  YAML::Mark timeout_mark_ = YAML::Mark::null_mark();
  YAML::Mark insecure_mark_ = YAML::Mark::null_mark();
};

}  // namespace

std::variant<cluster_options, std::string> load_cluster_file(const std::string& path) {
  return cluster_file_reader{path}.read();
}

}  // namespace caudal
