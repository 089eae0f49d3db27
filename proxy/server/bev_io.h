// Small helpers for the bufferevents of a client connection and its upstream, shared by the
// phases of the request path: sizes of reads and writes, writing now instead of through an
// EPOLLOUT round (kick), and the TLS records OpenSSL has read ahead but not yet handed over.
#pragma once
#include <event2/bufferevent.h>
#include <event2/buffer.h>
#include <openssl/ssl.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/net/address.h"
#include "tls-mitm/client_hello.h"

namespace sekisho::server {

// Why reads on one side are paused; distinct values, never one bool.
enum class Paused : uint8_t { No, OutFull };

class Worker;
// What a phase that moves bytes between the client and the origin asks of its connection
// (ClientConn): the two bufferevents, the buffer mark, and that there was activity.
class StreamLink {
 public:
  virtual Worker& worker() = 0;
  virtual bufferevent* clientBev() = 0;
  virtual bufferevent* upstreamBev() = 0;
  virtual size_t bufferLimit() const = 0;  // high-water mark per direction
  virtual void touch() = 0;

 protected:
  ~StreamLink() = default;
};

// Bytes per read(2)/write(2) on a busy stream: libevent's default of 16 KiB costs four times the
// system calls and callbacks for large bodies; reads stay bounded by the read watermark.
inline constexpr ssize_t kMaxIo = 128 * 1024;

// A TLS bufferevent reserves its whole single-read size in its input before each SSL_read and
// keeps what SSL_read did not fill (an empty chain that outlives the request, since libevent
// drains nothing from an empty buffer): with kMaxIo that was a 256 KiB chain per idle
// intercepted connection. One record's plaintext at most per read, sized so the chain and
// libevent's header fit in 16 KiB.
inline constexpr ssize_t kTlsMaxRead = 16 * 1024 - 256;
// While a TLS client connection is idle its filter reserves this much (a 1 KiB chain) instead.
inline constexpr ssize_t kTlsIdleRead = 512;
// The origin side (OpenSSL on the socket) reserves only when its socket is readable, and what it
// reads is moved on whole, so it can take a full record: at 16 KiB - 256 every full 16 KiB record
// came out as two SSL_reads, two chains and so two records to the client (16,128 + 256 bytes).
inline constexpr ssize_t kOriginTlsMaxRead = 32 * 1024 - 256;
// The reads of a TLS client connection between requests. Whenever reading is enabled,
// libevent's TLS filter reserves a chain for one read in the input and tries SSL_read; with
// nothing to read the empty chain stays for as long as the connection idles. Once what the
// client sent is consumed (afterHead), the next reservation is small (kTlsIdleRead); the first
// read that brings data makes reads full-sized again (onData), so a long body still moves in
// whole records. trim() gives back a chain reserved before that (the connection idled since):
// draining a buffer whose content is a single byte frees all its chains, with reads off
// meanwhile so that no client byte can land behind ours. Only for a TLS filter over a socket:
// for anything else the calls do nothing.
class TlsIdleReads {
 public:
  void afterHead(bufferevent* tls);
  void trim(bufferevent* tls);
  void onData(bufferevent* tls);
  bool small() const { return small_; }

 private:
  bool small_ = false;
};

// Read and write sizes and watermarks for a connection buffering at most `bufferBytes` a direction.
void tuneBev(bufferevent* bev, size_t bufferBytes);
void setNoDelay(evutil_socket_t fd);
// Our end of a connected socket (getsockname); empty when it cannot be read.
net::SocketAddr localAddress(evutil_socket_t fd);
inline void addStr(evbuffer* b, std::string_view s) { evbuffer_add(b, s.data(), s.size()); }
bool isTlsBev(bufferevent* bev);
// Writes what a bufferevent's output holds right away, while its write event is off, and turns
// the event on only for what the socket would not take. Most responses leave in one writev with
// no epoll change at all (libevent would add and remove EPOLLOUT for each of them).
void kick(bufferevent* bev);
// Records OpenSSL read ahead from the origin (up to 64 KiB per read(), see origin_tls.cc) but has
// not decrypted yet. bufferevent_openssl reads one record at a time and then waits for the
// socket, which stays quiet while whole records wait inside OpenSSL; and when the input
// drains below its watermark it only re-arms the socket event. So every callback that may
// have consumed upstream input ends with pokeTlsPending(), which runs the read event now.
bool tlsPending(bufferevent* bev);
void pokeTlsPending(bufferevent* bev);
// Takes one record that OpenSSL holds whole (read ahead) into the input now, as the bufferevent's
// own read would on a later loop turn; a body streaming from the origin then leaves for the
// client with several records per write instead of one loop turn and one writev per record.
// Anything but a record read (a partial record, close_notify, an alert, an error) is left to
// libevent's read, which meets the same state and reports it: its read event is activated.
bool takeBufferedRecord(bufferevent* bev);
// Called from a write callback: the output has drained, so the event goes off again.
void quietIfEmpty(bufferevent* bev);

// The client side of an intercepted connection: a TLS server filter over the plain bufferevent,
// taking `ssl` (the ClientHello still buffered goes with it). Null when libevent refuses; `plain`
// and `ssl` are freed then. The filter encrypts into the plain output only while that is under
// `bufferBytes`: without the mark, a client that never reads would make us hold every record.
bufferevent* wrapServerTls(event_base* base, bufferevent* plain, SSL* ssl, size_t bufferBytes);
// TLS records a filter has produced that its socket has not taken yet.
bool tlsRecordsQueued(bufferevent* tls);
// The ALPN the client's TLS chose was h2.
bool alpnChoseH2(bufferevent* tls);

// The ClientHello at the front of `in`, read without consuming it (tls-mitm/client_hello.h), over
// at most what the parser's limits allow; `*peeked`: the bytes looked at.
mitm::ParseOutcome peekBufferedHello(evbuffer* in, size_t* peeked = nullptr);
// The most bytes peekBufferedHello looks at: a hello longer than this is not waited for.
size_t helloPeekLimit();

}  // namespace sekisho::server
