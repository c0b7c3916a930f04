// The host check of the synchronous stream servers (start_server, plain and TLS; src/streams and src/tls only).
#pragma once

#include <string_view>

namespace tulipa::detail {

// The synchronous start_server cannot wait for a lookup: numeric hosts, "" and "localhost" pass; any other name
// throws std::invalid_argument naming `async_form`, the awaitable call that does resolve it (as create_server's
// error names create_server_async).
void check_server_host_without_lookup(std::string_view host, std::string_view async_form);

}  // namespace tulipa::detail
