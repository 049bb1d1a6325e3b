#pragma once
/// Owning pointers for OpenSSL objects: `openssl_ptr<X509, X509_free>`.
/// Shared by the certificate code, the node security checks and the tests.

#include <memory>

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

}  // namespace caudal::cluster
