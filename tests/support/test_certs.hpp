// Certificates for TLS tests, generated at run time with OpenSSL's API (nothing secret or expiring is checked in).
// One small PKI per test process, made on first use in a fresh temporary directory that is removed at exit:
//   ca            a trusted root CA ("tulipa test CA")
//   server        "localhost" (DNS:localhost, IP:127.0.0.1, IP:::1), signed by ca, valid now
//   expired       "localhost", signed by ca, expired yesterday
//   wrong_host    "wrong.example" (DNS:wrong.example only), signed by ca, valid now
//   untrusted     "localhost", signed by another CA nobody trusts
//   client        a client certificate ("tulipa test client"), signed by ca
// Keys are EC P-256 (instant to generate). Every path is a PEM file.
#pragma once

#include <string>

#include "tulipa/tls.hpp"

namespace tulipa::test {

struct CertAndKey {
  std::string cert{};  // PEM certificate file
  std::string key{};   // PEM private key file
};

struct TestPki {
  std::string dir{};
  std::string ca_cert{};  // the trusted CA's certificate (PEM file)
  std::string ca_pem{};   // the same as text
  CertAndKey server{};
  CertAndKey expired{};
  CertAndKey wrong_host{};
  CertAndKey untrusted{};
  CertAndKey client{};
};

// The process's test PKI, generated on first call. Throws std::runtime_error if OpenSSL fails.
const TestPki& test_pki();

// A client context that trusts the test CA (so it accepts `server` for "localhost").
SslContext trusting_client();
// A server context with the test PKI's "localhost" certificate.
SslContext localhost_server();

}  // namespace tulipa::test
