// StreamReader and StreamWriter: reference-counted handles on a StreamReaderProtocol.
#include <algorithm>
#include <stdexcept>

#include "streams/stream_reader_protocol.hpp"
#include "tulipa/streams.hpp"

namespace tulipa {

using detail::StreamRead;
using detail::StreamReadRequest;
using detail::StreamReadUntil;
using detail::StreamWait;
using detail::StreamWaitRequest;

namespace {
detail::StreamReaderProtocol& checked(detail::StreamReaderProtocol* c, const char* who) {
  if (!c) throw std::logic_error(std::string(who) + ": empty (moved-from) handle");
  return *c;
}
}  // namespace

// --- StreamReader

StreamReader::StreamReader(std::size_t limit) : c_(detail::StreamReaderProtocol::create(limit, false)) { c_->retain(); }
StreamReader::StreamReader(const StreamReader& o) noexcept : c_(o.c_) {
  if (c_) c_->retain();
}
StreamReader::~StreamReader() {
  if (c_) c_->release();
}

namespace {
// read(n) reads at most what a reader's buffer can hold anyway. readexactly(n) beyond it keeps an impossible
// count (UINT32_MAX > Bytes::max_size): it fails, with the buffer's std::length_error or IncompleteReadError.
std::uint32_t capped(std::size_t n) noexcept {
  return static_cast<std::uint32_t>(std::min<std::size_t>(n, Bytes::max_size));
}
std::uint32_t impossible_if_too_big(std::size_t n) noexcept {
  return n > Bytes::max_size ? UINT32_MAX : static_cast<std::uint32_t>(n);
}
}  // namespace

StreamReadRequest StreamReader::read(std::ptrdiff_t n) noexcept {
  if (n < 0) return StreamReadRequest(c_, StreamRead::Kind::all, 0);
  return StreamReadRequest(c_, StreamRead::Kind::some, capped(static_cast<std::size_t>(n)));
}
StreamReadRequest StreamReader::readline() noexcept { return StreamReadRequest(c_, StreamRead::Kind::line, 0); }
StreamReadUntil StreamReader::readuntil(std::string_view separator) noexcept {
  return readuntil(std::as_bytes(std::span(separator.data(), separator.size())));
}
StreamReadUntil StreamReader::readuntil(std::span<const std::byte> separator) noexcept {
  return StreamReadUntil(c_, separator);
}
StreamReadRequest StreamReader::readexactly(std::size_t n) noexcept {
  return StreamReadRequest(c_, StreamRead::Kind::exactly, impossible_if_too_big(n));
}

bool StreamReader::at_eof() const noexcept { return c_ && c_->eof_ && c_->buffered() == 0; }
void StreamReader::feed_data(std::span<const std::byte> data) { checked(c_, "StreamReader").feed(data); }
void StreamReader::feed_eof() { checked(c_, "StreamReader").feed_eof(); }
void StreamReader::set_exception(std::exception_ptr e) { checked(c_, "StreamReader").set_exception(std::move(e)); }
std::exception_ptr StreamReader::exception() const noexcept { return c_ ? c_->exc_ : nullptr; }
std::size_t StreamReader::limit() const noexcept { return c_ ? c_->limit_ : 0; }
std::size_t StreamReader::buffered() const noexcept { return c_ ? c_->buffered() : 0; }

// --- StreamWriter

StreamWriter::StreamWriter(const StreamWriter& o) noexcept : c_(o.c_) {
  if (c_) c_->retain();
}
StreamWriter::~StreamWriter() {
  if (c_) c_->release();
}

void StreamWriter::write(std::span<const std::byte> data) {
  // Once the connection is lost the transport is gone: writes are dropped, as asyncio drops them.
  if (Transport* t = checked(c_, "StreamWriter").transport_) t->write(data);
}
void StreamWriter::writelines(std::span<const std::span<const std::byte>> pieces) {
  if (Transport* t = checked(c_, "StreamWriter").transport_) t->writelines(pieces);
}
StreamWaitRequest StreamWriter::drain() noexcept { return StreamWaitRequest(c_, StreamWait::Kind::drain); }
StreamWaitRequest StreamWriter::wait_closed() noexcept { return StreamWaitRequest(c_, StreamWait::Kind::closed); }
void StreamWriter::write_eof() {
  if (Transport* t = checked(c_, "StreamWriter").transport_) t->write_eof();
}
bool StreamWriter::can_write_eof() const noexcept { return c_ && c_->transport_ && c_->transport_->can_write_eof(); }
void StreamWriter::close() {
  if (Transport* t = checked(c_, "StreamWriter").transport_) t->close();
}
bool StreamWriter::is_closing() const noexcept { return !c_ || !c_->transport_ || c_->transport_->is_closing(); }
Transport* StreamWriter::transport() const noexcept { return c_ ? c_->transport_ : nullptr; }
SocketAddress StreamWriter::peername() const {
  Transport* t = transport();
  return t ? t->peername() : SocketAddress{};
}
SocketAddress StreamWriter::sockname() const {
  Transport* t = transport();
  return t ? t->sockname() : SocketAddress{};
}
StreamReader StreamWriter::reader() const noexcept {
  if (c_) c_->retain();
  return detail::StreamAccess::reader(c_);
}

}  // namespace tulipa
