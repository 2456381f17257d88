#include "daemon/config_errors.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "daemon/config.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;

// One step of a JSON path as ParseConfig writes it: .key, ["key"] or [index].
struct Step {
  bool is_index = false;
  std::string key;
  size_t index = 0;
};

// Reads the path at the start of "$.a["b"][2]: reason"; false when there is none.
bool SplitError(const std::string& e, std::vector<Step>* path, std::string* reason) {
  if (e.empty() || e[0] != '$') return false;
  size_t i = 1;
  while (i < e.size() && (e[i] == '.' || e[i] == '[')) {
    Step s;
    if (e[i] == '.') {
      size_t j = i + 1;
      while (j < e.size() && (std::isalnum(static_cast<unsigned char>(e[j])) || e[j] == '_')) ++j;
      s.key = e.substr(i + 1, j - i - 1);
      i = j;
    } else if (i + 1 < e.size() && e[i + 1] == '"') {
      size_t j = i + 2;
      while (j < e.size() && e[j] != '"') j += e[j] == '\\' ? 2 : 1;
      if (j >= e.size()) return false;
      const json k = json::parse(e.substr(i + 1, j - i), nullptr, false);
      if (!k.is_string() || j + 1 >= e.size() || e[j + 1] != ']') return false;
      s.key = k.get<std::string>();
      i = j + 2;
    } else {
      const size_t close = e.find(']', i);
      if (close == std::string::npos) return false;
      s.is_index = true;
      s.index = std::stoull(e.substr(i + 1, close - i - 1));
      i = close + 1;
    }
    path->push_back(std::move(s));
  }
  if (e.compare(i, 2, ": ") != 0) return false;
  *reason = e.substr(i + 2);
  return true;
}

std::string PathText(const std::vector<Step>& path, size_t n) {
  std::string out = "$";
  for (size_t i = 0; i < n && i < path.size(); ++i) {
    const Step& s = path[i];
    const bool plain = !s.key.empty() && std::all_of(s.key.begin(), s.key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (s.is_index)
      out += "[" + std::to_string(s.index) + "]";
    else if (plain)
      out += "." + s.key;
    else
      out += "[" + json(s.key).dump() + "]";
  }
  return out;
}

class Collector {
 public:
  explicit Collector(json doc) : doc_(std::move(doc)) {}

  // One round: false when the document parses, or nothing more can be taken out.
  bool Round(std::vector<std::string>* errors) {
    auto r = ParseConfig(doc_.dump());
    if (r.ok()) return false;
    const std::string e(r.status().message());
    std::vector<Step> path;
    std::string reason;
    if (!SplitError(e, &path, &reason) || path.empty()) {
      errors->push_back(e);
      return false;
    }
    const std::vector<Step> original = Original(path);
    const std::string text = PathText(original, original.size()) + ": " + reason;
    if (!seen_.insert(text).second) return false;  // taking it out did not help
    if (!Consequence(original, reason)) errors->push_back(text);
    return TakeOut(path, original);
  }

 private:
  // The path in the original document's indexes.
  std::vector<Step> Original(const std::vector<Step>& path) const {
    std::vector<Step> out;
    for (const Step& s : path) {
      Step o = s;
      if (s.is_index) {
        auto it = removed_.find(PathText(out, out.size()));
        if (it != removed_.end()) {
          for (size_t r : it->second) o.index += r <= o.index;  // ascending
        }
      }
      out.push_back(o);
    }
    return out;
  }

  bool Consequence(const std::vector<Step>& p, const std::string& reason) const {
    for (const std::string& d : devices_) {
      if (reason.find("no backstore or volume named '" + d + "'") != std::string::npos) return true;
    }
    for (const std::string& g : groups_) {
      if (reason.find("no auth group named '" + g + "'") != std::string::npos) return true;
    }
    if (p.size() >= 2 && p[0].key == "targets" && reason.starts_with("the target has no LUN") &&
        lun_removed_.contains(p[1].key)) {
      return true;
    }
    if (p.size() == 1 && p[0].key == "targets" && reason.starts_with("no targets")) {
      return targets_removed_;
    }
    // "required" or "non-empty" once every element of an array was taken out.
    return removed_.contains(PathText(p, p.size()));
  }

  // Takes the object the error lies in out of the document.
  bool TakeOut(const std::vector<Step>& path, const std::vector<Step>& original) {
    const std::string& section = path[0].key;
    if (path.size() == 1) {
      if (section == "targets") return false;  // nothing to serve: nothing more to read
      doc_.erase(section);
      return true;
    }
    size_t depth = 1;  // a global key
    if (section == "targets" || section == "backstores" || section == "auth_groups" ||
        section == "volumes") {
      depth = 2;
    }
    if (section == "targets" && path.size() >= 4 && path[3].is_index &&
        (path[2].key == "luns" || path[2].key == "acls" || path[2].key == "portal_groups")) {
      depth = 4;
    }
    Note(path, original, depth);
    json* parent = &doc_;
    for (size_t i = 0; i + 1 < depth; ++i) {
      const Step& s = path[i];
      parent = s.is_index ? &parent->at(s.index) : &parent->at(s.key);
    }
    const Step& last = path[depth - 1];
    if (last.is_index) {
      if (!parent->is_array() || last.index >= parent->size()) return false;
      parent->erase(last.index);
    } else {
      if (!parent->is_object() || !parent->contains(last.key)) return false;
      parent->erase(last.key);
    }
    return true;
  }

  // Remembers what goes, for Consequence() and Original().
  void Note(const std::vector<Step>& path, const std::vector<Step>& original, size_t depth) {
    const std::string& section = path[0].key;
    if (depth == 2 && section == "backstores") devices_.insert(path[1].key);
    if (depth == 2 && section == "auth_groups") groups_.insert(path[1].key);
    if (depth == 2 && section == "targets") targets_removed_ = true;
    if (depth == 2 && section == "volumes" && path[1].is_index) {
      const json& v = doc_["volumes"];
      if (v.is_array() && path[1].index < v.size() && v[path[1].index].is_object()) {
        auto n = v[path[1].index].find("name");
        if (n != v[path[1].index].end() && n->is_string()) devices_.insert(n->get<std::string>());
      }
    }
    if (depth == 4 && path[2].key == "luns") lun_removed_.insert(path[1].key);
    if (original[depth - 1].is_index) {
      auto& r = removed_[PathText(original, depth - 1)];
      r.insert(std::upper_bound(r.begin(), r.end(), original[depth - 1].index),
               original[depth - 1].index);
    }
  }

  json doc_;
  std::set<std::string> seen_;
  std::set<std::string> devices_;      // backstores and volumes taken out
  std::set<std::string> groups_;       // auth groups taken out
  std::set<std::string> lun_removed_;  // targets that lost a LUN entry
  bool targets_removed_ = false;
  // Array (path in original indexes) -> original indexes taken out, ascending.
  std::map<std::string, std::vector<size_t>> removed_;
};

}  // namespace

std::vector<std::string> ConfigErrors(std::string_view text) {
  auto first = ParseConfig(text);
  if (first.ok()) return {};
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return {std::string(first.status().message())};
  std::vector<std::string> errors;
  Collector c(std::move(doc));
  for (int round = 0; round < 1000 && c.Round(&errors);) ++round;
  if (errors.empty()) errors.push_back(std::string(first.status().message()));
  return errors;
}

}  // namespace ferry::daemon
