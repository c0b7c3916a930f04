// Turning OpenSSL's thread-local error queue into SslError. Callers clear the queue (ERR_clear_error) before each
// OpenSSL call whose failure they report, so that what is found there belongs to that call.
#pragma once

#include <openssl/ssl.h>

#include <string_view>

#include "tulipa/tls.hpp"

namespace tulipa {

// The error at the end of the queue (OpenSSL's most specific one), classified; `ssl` (may be null) supplies the
// certificate verification result. `fallback` is the reason used when the queue is empty. Clears the queue.
SslError ssl_error_from_queue(const SSL* ssl, std::string_view fallback);

// A configuration error (Kind::configuration) naming what failed, e.g. "cannot load certificate chain 'x.pem'",
// followed by OpenSSL's reason when it has one. Clears the queue.
SslError ssl_configuration_error(std::string_view what);

}  // namespace tulipa
