// The TLS engine (src/tls/tls_engine.hpp) fed arbitrary records from the network, as a server (a mutated
// ClientHello and what follows it) or as a client (after its ClientHello, a mutated server flight), in chunks of
// arbitrary size. The engine must answer with SslError (and an alert in outgoing()) or go on; never crash, leak,
// hang or read outside its rings.
//
// Input: [control] then the bytes the peer sends. control bit 0: the engine's role (0 server, 1 client); bits 1-7:
// the chunk size the bytes arrive in (0: all at once, else 8 * k bytes). The seeds (fuzz/corpus/tls_engine/) are
// real first flights recorded from OpenSSL (see fuzz/README.md).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>

#include "fuzz/fuzz_check.hpp"
#include "support/test_certs.hpp"
#include "tls/tls_engine.hpp"
#include "tulipa/tls.hpp"

namespace {

using namespace tulipa;
using Status = TlsEngine::Status;

const SslContext* server_context = nullptr;
const SslContext* client_context = nullptr;

// Ciphertext for the network goes nowhere; it must be consistent though.
void send_all(TlsEngine& e) {
  for (;;) {
    std::span<const std::byte> out = e.outgoing();
    if (out.empty()) break;
    e.consume_outgoing(out.size());
  }
  FUZZ_CHECK(e.outgoing_size() == 0);
}

// Runs the engine as far as the ciphertext received so far lets it: handshake, then plaintext reads.
void step(TlsEngine& e) {
  if (!e.handshake_done()) {
    for (int i = 0; i < 4 && !e.handshake_done(); ++i) {
      Status s = e.do_handshake();
      send_all(e);
      if (s == Status::want_read) break;
    }
  }
  if (e.handshake_done()) {
    std::byte plain[4096];
    for (;;) {
      TlsEngine::Result r = e.read(plain);
      send_all(e);
      if (r.status == Status::ok) {
        FUZZ_CHECK(r.size > 0 && r.size <= sizeof plain);
        continue;
      }
      FUZZ_CHECK(r.size == 0);
      if (r.status != Status::want_write) break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  server_context = new SslContext(test::localhost_server());
  client_context = new SslContext(test::trusting_client());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool client = data[0] & 1;
  const std::size_t chunk = (data[0] >> 1) == 0 ? size : 8 * std::size_t(data[0] >> 1);
  std::span<const std::byte> peer(reinterpret_cast<const std::byte*>(data + 1), size - 1);

  TlsEngineOptions options;
  if (client) options.server_hostname = "localhost";
  TlsEngine engine(client ? *client_context : *server_context, std::move(options));
  try {
    if (client) {
      FUZZ_CHECK(engine.do_handshake() == Status::want_read);  // the ClientHello is out
      send_all(engine);
    }
    while (!peer.empty()) {
      const std::size_t offered = std::min(chunk, peer.size());
      const std::size_t took = engine.feed(peer.first(offered));
      FUZZ_CHECK(took <= offered);
      peer = peer.subspan(took);
      const std::size_t before = engine.incoming_size();
      step(engine);
      // A full ring the engine does not drain would stall a real connection forever.
      if (took == 0 && engine.incoming_size() == before) break;
    }
    engine.feed_eof();
    step(engine);
    Status s = engine.shutdown();
    send_all(engine);
    FUZZ_CHECK(s == Status::ok || s == Status::want_read);
  } catch (const SslError&) {
    send_all(engine);  // the fatal alert, if any
  }
  return 0;
}
