#pragma once
/// Owning pointers for OpenSSL objects (`openssl_ptr<X509, X509_free>`) and
/// OpenSSL's error text. Shared by the certificate code, the node security
/// checks and the tests.

#include <openssl/err.h>

#include <memory>
#include <string>

namespace caudal::cluster {

template <auto Free>
struct openssl_free {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <class T, auto Free>
using openssl_ptr = std::unique_ptr<T, openssl_free<Free>>;

/// Drains OpenSSL's error queue of this thread into one line.
inline std::string openssl_errors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char line[256];
    ERR_error_string_n(code, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text.empty() ? "no OpenSSL error reported" : text;
}

}  // namespace caudal::cluster
