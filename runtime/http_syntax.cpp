// The text forms of http_client.hpp: base URLs, header lookup, Retry-After.
#include "runtime/http_client.hpp"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace caudal {
namespace {

bool is_safe_url_text(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7F;
  });
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Splits "host[:port]" or "[v6]:port"; false when malformed.
bool split_authority(std::string_view authority, http_endpoint& out, std::string& error) {
  std::string_view port_text;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "has an unclosed '[' in its host";
      return false;
    }
    out.host = authority.substr(1, close - 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) {
      error = "has text after its IPv6 address";
      return false;
    }
    if (!rest.empty()) port_text = rest.substr(1);
  } else {
    auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) {
    error = "has no host";
    return false;
  }
  if (port_text.empty()) {
    out.port = out.is_https ? 443 : 80;
    return true;
  }
  bool is_number =
      port_text.size() <= 5 &&
      std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  out.port = is_number ? std::stoi(std::string(port_text)) : 0;
  if (out.port < 1 || out.port > 65535) {
    error = "has a bad port '" + std::string(port_text) + "'";
    return false;
  }
  return true;
}

}  // namespace

std::optional<http_endpoint> http_endpoint::parse(std::string_view url, std::string& error) {
  auto fail = [&](const std::string& why) {
    error = "base_url '" + std::string(url) + "' " + why;
    return std::nullopt;
  };
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return fail("is not an http:// or https:// URL");
  auto scheme = lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https")
    return fail("has scheme '" + scheme + "': only http and https are supported");
  if (!is_safe_url_text(url)) return fail("contains spaces or control characters");
  http_endpoint out;
  out.is_https = scheme == "https";
  auto rest = url.substr(scheme_end + 3);
  auto path_start = rest.find_first_of("/?#");
  auto authority = rest.substr(0, path_start);
  auto path = path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
  if (path.find_first_of("?#") != std::string_view::npos)
    return fail("has a query or fragment: give only scheme, host, port and path");
  if (authority.find('@') != std::string_view::npos)
    return fail("has user info: put credentials in api_key_env or headers");
  std::string why;
  if (!split_authority(authority, out, why)) return fail(why);
  while (path.ends_with('/')) path.remove_suffix(1);
  out.base_path = path;
  return out;
}

std::string http_endpoint::url_of(std::string_view path) const {
  bool is_v6 = host.find(':') != std::string::npos;
  std::string url = (is_https ? "https://" : "http://") + (is_v6 ? "[" + host + "]" : host);
  if (port != (is_https ? 443 : 80)) url += ":" + std::to_string(port);
  return url + base_path + std::string(path);
}

const std::string* http_head::find(std::string_view name) const {
  for (const auto& h : headers)
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0)
      return &h.value;
  return nullptr;
}

namespace {

/// "Nov" -> 10 (0-based), -1 for anything else.
int month_index(const char* name) {
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i)
    if (std::strcmp(name, months[i]) == 0) return i;
  return -1;
}

/// The three HTTP date forms (RFC 9110 §5.6.7), read with sscanf so that no
/// locale changes the month names.
std::optional<std::time_t> parse_http_date(const std::string& text) {
  std::tm tm{};
  char month[4] = {};
  int year = 0;
  int consumed = 0;
  auto is_whole = [&](int fields) {
    bool ok = fields == 6 && consumed == static_cast<int>(text.size());
    consumed = 0;
    return ok;
  };
  const char* s = text.c_str();
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  bool ok =
      is_whole(std::sscanf(s, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &tm.tm_mday,
                           month, &year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed));
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  if (!ok &&
      (ok = is_whole(std::sscanf(s, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &tm.tm_mday,
                                 month, &year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed))))
    year += year < 70 ? 2000 : 1900;
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (!ok)
    ok = is_whole(std::sscanf(s, "%*3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", month, &tm.tm_mday,
                              &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &year, &consumed));
  tm.tm_mon = month_index(month);
  tm.tm_year = year - 1900;
  if (!ok || tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  return timegm(&tm);
}

}  // namespace

std::optional<double> parse_retry_after(std::string_view text,
                                        std::chrono::system_clock::time_point now) {
  auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return std::nullopt;
  std::string trimmed(text.substr(first, text.find_last_not_of(" \t") - first + 1));
  bool is_seconds = std::all_of(trimmed.begin(), trimmed.end(),
                                [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (is_seconds) {
    char* end = nullptr;
    double seconds = std::strtod(trimmed.c_str(), &end);
    if (end != trimmed.c_str() + trimmed.size() || !std::isfinite(seconds)) return std::nullopt;
    return seconds;
  }
  auto date = parse_http_date(trimmed);
  if (!date) return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(*date);
  return std::max(0.0, std::chrono::duration<double>(at - now).count());
}

}  // namespace caudal
