#include "subprocess/pipe_stream_transport.hpp"

#include <stdexcept>

#include "streams/stream_reader_protocol.hpp"

namespace tulipa::detail {

PipeStreamTransport::~PipeStreamTransport() {
  // Only reached attached if the process state goes without its pipes being lost (a loop torn down mid-run).
  if (conn_) detach(nullptr);
}

void PipeStreamTransport::attach(EventLoop& loop, ReadTransport* out, WriteTransport* in, std::size_t limit) {
  loop_ = &loop;
  out_ = out;
  in_ = in;
  conn_ = StreamReaderProtocol::create(limit, /*for_transport=*/true);
  conn_->connection_made(*this);
}

void PipeStreamTransport::detach(std::exception_ptr exc) {
  out_ = nullptr;
  in_ = nullptr;
  if (StreamReaderProtocol* c = std::exchange(conn_, nullptr)) {
    c->connection_lost(std::move(exc));
    // As a transport deletes its protocol: through the base, which reaches StreamReaderProtocol's destroying delete
    // (it drops the transport's share; the stream's handles may keep the state alive).
    delete static_cast<StreamProtocol*>(c);
  }
}

void PipeStreamTransport::close() {
  if (out_) out_->close();
  if (in_) in_->close();
}

bool PipeStreamTransport::is_closing() const noexcept {
  if (out_) return out_->is_closing();
  if (in_) return in_->is_closing();
  return true;
}

int PipeStreamTransport::fd() const noexcept {
  if (out_) return out_->fd();
  if (in_) return in_->fd();
  return -1;
}

void PipeStreamTransport::pause_reading() {
  if (out_) out_->pause_reading();
}
void PipeStreamTransport::resume_reading() {
  if (out_) out_->resume_reading();
}
bool PipeStreamTransport::is_reading() const noexcept { return out_ && out_->is_reading(); }

WriteTransport& PipeStreamTransport::writable(const char* what) const {
  if (!in_) throw std::logic_error(std::string(what) + ": a child's output pipe is not writable");
  return *in_;
}

void PipeStreamTransport::write(std::span<const std::byte> data) { writable("write").write(data); }
void PipeStreamTransport::writelines(std::span<const std::span<const std::byte>> pieces) {
  writable("writelines").writelines(pieces);
}
std::size_t PipeStreamTransport::get_write_buffer_size() const noexcept {
  return in_ ? in_->get_write_buffer_size() : 0;
}
void PipeStreamTransport::set_write_buffer_limits(std::size_t high, std::size_t low) {
  writable("set_write_buffer_limits").set_write_buffer_limits(high, low);
}
WriteBufferLimits PipeStreamTransport::get_write_buffer_limits() const noexcept {
  return in_ ? in_->get_write_buffer_limits() : WriteBufferLimits{64 * 1024, 16 * 1024};
}
void PipeStreamTransport::write_eof() { writable("write_eof").write_eof(); }
void PipeStreamTransport::abort() {
  if (in_) in_->abort();
  if (out_) out_->close();
}

StreamProtocol& PipeStreamTransport::get_protocol() const noexcept { return *conn_; }

std::unique_ptr<StreamProtocol> PipeStreamTransport::set_protocol(std::unique_ptr<StreamProtocol>) {
  throw std::logic_error("set_protocol: a subprocess pipe's stream cannot change protocols");
}

}  // namespace tulipa::detail
