// tulipa_tls_echo: a TLS line echo server and a client for it, on tulipa's protocols over TLS.
//
//   tulipa_tls_echo server CERT KEY [PORT]        echo every line back over TLS on 127.0.0.1 (port 0: any free)
//   tulipa_tls_echo client CA HOST PORT TEXT      send TEXT, print the echo, close (verifies HOST's certificate)
//
// A certificate to try it with:
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem
//     -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 30        (one command line)
//   tulipa_tls_echo server cert.pem key.pem 8443 &
//   tulipa_tls_echo client cert.pem localhost 8443 'hello'
// `openssl s_client -connect 127.0.0.1:8443 -CAfile cert.pem` talks to the server too.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "tulipa/loop.hpp"
#include "tulipa/net.hpp"
#include "tulipa/tls.hpp"
#include "tulipa/tls_net.hpp"

namespace {

class Echo : public tulipa::Protocol {
 public:
  void connection_made(tulipa::Transport& t) override { t_ = &t; }
  void data_received(std::span<const std::byte> data) override { t_->write(data); }

 private:
  tulipa::Transport* t_ = nullptr;
};

class Client : public tulipa::Protocol {
 public:
  Client(std::string text, int* status) : text_(std::move(text) + "\n"), status_(status) {}
  void connection_made(tulipa::Transport& t) override {
    t_ = &t;
    if (auto* tls = tulipa::as_ssl_transport(t)) {
      std::printf("connected: %.*s, %.*s, server certificate: %s\n", static_cast<int>(tls->tls_version().size()),
                  tls->tls_version().data(), static_cast<int>(tls->cipher().size()), tls->cipher().data(),
                  tls->peer_certificate_subject().c_str());
    }
    t.write(std::string_view(text_));
  }
  void data_received(std::span<const std::byte> data) override {
    echoed_.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (echoed_.size() >= text_.size()) {
      std::printf("echo: %s", echoed_.c_str());
      *status_ = echoed_ == text_ ? 0 : 1;
      t_->close();  // close_notify, then the socket
    }
  }
  void connection_lost(std::exception_ptr exc) override {
    if (exc) {
      try {
        std::rethrow_exception(exc);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tulipa_tls_echo: connection lost: %s\n", e.what());
      }
      *status_ = 1;
    }
    tulipa::get_running_loop().stop();
  }

 private:
  std::string text_;
  std::string echoed_;
  int* status_;
  tulipa::Transport* t_ = nullptr;
};

int usage() {
  std::fprintf(stderr,
               "usage: tulipa_tls_echo server CERT KEY [PORT]\n"
               "       tulipa_tls_echo client CA HOST PORT TEXT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  tulipa::EventLoop loop;
  try {
    if (mode == "server" && (argc == 4 || argc == 5)) {
      const long port = argc == 5 ? std::strtol(argv[4], nullptr, 10) : 0;
      if (port < 0 || port > 65535) return usage();
      auto ssl = tulipa::SslContext::server(argv[2], argv[3]);
      tulipa::Server server = tulipa::create_server(
          loop, [] { return std::make_unique<Echo>(); }, "127.0.0.1", static_cast<std::uint16_t>(port), ssl);
      std::printf("TLS echo on %s\n", server.sockets().at(0).to_string().c_str());
      std::fflush(stdout);
      loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
      loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
      loop.run_forever();
      server.close();
      return 0;
    }
    if (mode == "client" && argc == 6) {
      const long port = std::strtol(argv[4], nullptr, 10);
      if (port <= 0 || port > 65535) return usage();
      auto ssl = tulipa::SslContext::client();
      ssl.load_verify_locations(argv[2]);
      int status = 1;
      tulipa::create_connection(
          loop, [&] { return std::make_unique<Client>(argv[5], &status); }, argv[3], static_cast<std::uint16_t>(port),
          ssl,
          [&](tulipa::Transport* t, std::exception_ptr error) {
            if (t != nullptr) return;
            try {
              std::rethrow_exception(error);
            } catch (const std::exception& e) {
              std::fprintf(stderr, "tulipa_tls_echo: cannot connect: %s\n", e.what());
            }
            loop.stop();
          });
      loop.run_forever();
      return status;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulipa_tls_echo: %s\n", e.what());
    return 1;
  }
  return usage();
}
