#include "tls/ssl_errors.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <string>
#include <utility>

namespace tulipa {

namespace {

std::string reason_of(unsigned long code, std::string_view fallback) {
  if (code == 0) return std::string(fallback);
  const char* reason = ERR_reason_error_string(code);
  if (reason != nullptr) return reason;
  return "OpenSSL error " + std::to_string(ERR_GET_LIB(code)) + ":" + std::to_string(ERR_GET_REASON(code));
}

std::string message_of(const std::string& reason, const std::string& verify_message) {
  return verify_message.empty() ? reason : reason + ": " + verify_message;
}

}  // namespace

SslError::SslError(Kind kind, std::string reason, std::string verify_message, unsigned long code, long verify_result)
    : std::runtime_error(message_of(reason, verify_message)),
      kind_(kind),
      reason_(std::move(reason)),
      verify_message_(std::move(verify_message)),
      code_(code),
      verify_result_(verify_result) {}

SslError ssl_error_from_queue(const SSL* ssl, std::string_view fallback) {
  // The last error is OpenSSL's most specific one (earlier entries are the outer layers that gave up because of it).
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  std::string reason = reason_of(code, fallback);
  if (code != 0 && ERR_GET_LIB(code) == ERR_LIB_SSL) {
    const int r = ERR_GET_REASON(code);
    if (r == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      long verify_result = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
      std::string verify_message =
          verify_result != X509_V_OK ? X509_verify_cert_error_string(verify_result) : std::string();
      return SslError(SslError::Kind::certificate, std::move(reason), std::move(verify_message), code, verify_result);
    }
    if (r == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      return SslError(SslError::Kind::truncated, std::move(reason), {}, code);
    }
  }
  return SslError(SslError::Kind::protocol, std::move(reason), {}, code);
}

SslError ssl_configuration_error(std::string_view what) {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  std::string message(what);
  if (code != 0) message += std::string(" (") + reason_of(code, "") + ")";
  return SslError(SslError::Kind::configuration, std::move(message), {}, code);
}

}  // namespace tulipa
