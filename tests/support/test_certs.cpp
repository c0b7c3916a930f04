#include "support/test_certs.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace tulipa::test {

namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
  void operator()(X509* p) const noexcept { X509_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter>;
using Cert = std::unique_ptr<X509, Deleter>;

[[noreturn]] void fail(const char* what) {
  char buf[256] = "no OpenSSL error";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
  throw std::runtime_error(std::string("test_certs: ") + what + ": " + buf);
}

Key make_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) fail("EVP_EC_gen");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) fail("X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `common_name`, valid from now+not_before_s to now+not_after_s, signed by
// issuer/issuer_key (self-signed when issuer is null). `san` is a subjectAltName value ("DNS:localhost,...").
Cert make_cert(EVP_PKEY* key, const char* common_name, X509* issuer, EVP_PKEY* issuer_key, bool is_ca, const char* san,
               long not_before_s, long not_after_s) {
  static long serial = 1;
  Cert cert(X509_new());
  if (!cert) fail("X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("tulipa tests"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (is_ca) {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (san != nullptr) add_extension(cert.get(), signer, NID_subject_alt_name, san);
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) fail("X509_sign");
  return cert;
}

std::string write_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("test_certs: cannot write " + path);
  const int ok = PEM_write_X509(f, cert);
  std::fclose(f);
  if (ok != 1) fail("PEM_write_X509");
  return path;
}

std::string write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("test_certs: cannot write " + path);
  const int ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  if (ok != 1) fail("PEM_write_PrivateKey");
  return path;
}

constexpr long day = 24 * 3600;

struct Generated {
  TestPki pki;
  Generated() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tulipa-pki-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("test_certs: mkdtemp failed");
    pki.dir = tmpl;
    const std::string d = pki.dir + "/";

    Key ca_key = make_key();
    Cert ca = make_cert(ca_key.get(), "tulipa test CA", nullptr, nullptr, true, nullptr, -day, 30 * day);
    pki.ca_cert = write_cert(d + "ca.pem", ca.get());
    std::ifstream in(pki.ca_cert);
    std::stringstream text;
    text << in.rdbuf();
    pki.ca_pem = text.str();

    auto leaf = [&](const char* name, const char* cn, const char* san, X509* issuer, EVP_PKEY* issuer_key, long from,
                    long to) {
      Key key = make_key();
      Cert cert = make_cert(key.get(), cn, issuer, issuer_key, false, san, from, to);
      return CertAndKey{write_cert(d + name + ".pem", cert.get()), write_key(d + name + ".key", key.get())};
    };
    const char* localhost = "DNS:localhost,IP:127.0.0.1,IP:::1";
    pki.server = leaf("server", "localhost", localhost, ca.get(), ca_key.get(), -day, 30 * day);
    pki.expired = leaf("expired", "localhost", localhost, ca.get(), ca_key.get(), -30 * day, -day);
    pki.wrong_host = leaf("wrong_host", "wrong.example", "DNS:wrong.example", ca.get(), ca_key.get(), -day, 30 * day);
    pki.client = leaf("client", "tulipa test client", nullptr, ca.get(), ca_key.get(), -day, 30 * day);

    Key other_key = make_key();
    Cert other = make_cert(other_key.get(), "untrusted CA", nullptr, nullptr, true, nullptr, -day, 30 * day);
    pki.untrusted = leaf("untrusted", "localhost", localhost, other.get(), other_key.get(), -day, 30 * day);
  }
  ~Generated() {
    std::error_code ignored;
    std::filesystem::remove_all(pki.dir, ignored);
  }
};

}  // namespace

const TestPki& test_pki() {
  static const Generated generated;
  return generated.pki;
}

SslContext trusting_client() {
  auto ctx = SslContext::client();
  ctx.load_verify_locations(test_pki().ca_cert);
  return ctx;
}

SslContext localhost_server() { return SslContext::server(test_pki().server.cert, test_pki().server.key); }

}  // namespace tulipa::test
