#include "proxy/server/bev_io.h"

#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>  // ev_read, ev_write
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>

#include "proxy/server/direct_flush.h"

namespace sekisho::server {

void tuneBev(bufferevent* bev, size_t bufferBytes) {
  ssize_t maxRead = kMaxIo;
  if (bufferevent_openssl_get_ssl(bev)) maxRead = bufferevent_get_underlying(bev) ? kTlsMaxRead : kOriginTlsMaxRead;
  bufferevent_set_max_single_read(bev, maxRead);
  bufferevent_set_max_single_write(bev, kMaxIo);
  bufferevent_setwatermark(bev, EV_READ, 0, bufferBytes);
  bufferevent_setwatermark(bev, EV_WRITE, bufferBytes / 2, 0);
}

net::SocketAddr localAddress(evutil_socket_t fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return net::SocketAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).value_or(net::SocketAddr{});
}

void setNoDelay(evutil_socket_t fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool isTlsBev(bufferevent* bev) { return bufferevent_openssl_get_ssl(bev) != nullptr; }

void kick(bufferevent* bev) {
  evbuffer* out = bufferevent_get_output(bev);
  if (evbuffer_get_length(out) == 0) return;
  if (isTlsBev(bev) && !bufferevent_get_underlying(bev)) {
    // OpenSSL on the socket itself (the origin side): run its write event in this loop pass.
    // Adding the bytes queued EPOLLOUT; once they are written the event is deleted again in the
    // same pass, and the epoll changelist turns the pair into no system call at all.
    bufferevent_enable(bev, EV_WRITE);
    event_active(&bev->ev_write, EV_WRITE, 1);
    return;
  }
  if (bufferevent_get_enabled(bev) & EV_WRITE) return;
  if (isTlsBev(bev) || bufferevent_getfd(bev) < 0) {  // TLS or a pair: no socket to write to here
    bufferevent_enable(bev, EV_WRITE);
    return;
  }
  DirectFlush::writeOut(out, bufferevent_getfd(bev));  // errors surface through the write event below
  if (evbuffer_get_length(out) > 0) bufferevent_enable(bev, EV_WRITE);
}

bool tlsPending(bufferevent* bev) {
  SSL* ssl = bufferevent_openssl_get_ssl(bev);
  return ssl && SSL_has_pending(ssl);
}

void pokeTlsPending(bufferevent* bev) {
  if ((bufferevent_get_enabled(bev) & EV_READ) && tlsPending(bev)) event_active(&bev->ev_read, EV_READ, 1);
}

bool takeBufferedRecord(bufferevent* bev) {
  if (!(bufferevent_get_enabled(bev) & EV_READ) || !tlsPending(bev)) return false;
  SSL* ssl = bufferevent_openssl_get_ssl(bev);
  evbuffer* in = bufferevent_get_input(bev);
  evbuffer_iovec v;
  if (evbuffer_reserve_space(in, kOriginTlsMaxRead, &v, 1) != 1) return false;
  ERR_clear_error();
  int r = SSL_read(ssl, v.iov_base, int(v.iov_len));
  if (r <= 0) {
    if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) event_active(&bev->ev_read, EV_READ, 1);
    ERR_clear_error();
    return false;
  }
  v.iov_len = size_t(r);
  evbuffer_commit_space(in, &v, 1);
  return true;
}

void quietIfEmpty(bufferevent* bev) {
  if (isTlsBev(bev)) return;  // TLS keeps its write side on
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) bufferevent_disable(bev, EV_WRITE);
}
bufferevent* wrapServerTls(event_base* base, bufferevent* plain, SSL* ssl, size_t bufferBytes) {
  bufferevent_setcb(plain, nullptr, nullptr, nullptr, nullptr);
  bufferevent* tls = bufferevent_openssl_filter_new(base, plain, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
  if (!tls) {
    SSL_free(ssl);
    bufferevent_free(plain);
    return nullptr;
  }
  bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
  bufferevent_setwatermark(plain, EV_WRITE, bufferBytes / 2, bufferBytes);
  DirectFlush::quiet(plain);
  return tls;
}

bool tlsRecordsQueued(bufferevent* tls) {
  bufferevent* under = bufferevent_get_underlying(tls);
  return under && evbuffer_get_length(bufferevent_get_output(under)) > 0;
}

bool alpnChoseH2(bufferevent* tls) {
  SSL* ssl = bufferevent_openssl_get_ssl(tls);
  if (!ssl) return false;
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(ssl, &p, &n);
  return n == 2 && p[0] == 'h' && p[1] == '2';
}

size_t helloPeekLimit() {
  mitm::HelloLimits limits;
  return limits.maxHandshakeBytes + 5 * limits.maxRecords;
}

mitm::ParseOutcome peekBufferedHello(evbuffer* in, size_t* peeked) {
  size_t n = std::min(evbuffer_get_length(in), helloPeekLimit());
  auto* p = reinterpret_cast<const char*>(evbuffer_pullup(in, ssize_t(n)));
  if (peeked) *peeked = n;
  return mitm::peekClientHello(std::string_view(p, n), mitm::HelloLimits{});
}

void TlsIdleReads::afterHead(bufferevent* tls) {
  if (small_ || !tls || !bufferevent_get_underlying(tls)) return;
  bufferevent_set_max_single_read(tls, kTlsIdleRead);
  small_ = true;
}

void TlsIdleReads::trim(bufferevent* tls) {
  if (!tls || !bufferevent_get_underlying(tls)) return;
  evbuffer* in = bufferevent_get_input(tls);
  if (evbuffer_get_length(in) != 0) return;
  short enabled = bufferevent_get_enabled(tls);
  bufferevent_disable(tls, EV_READ);
  evbuffer_add(in, "", 1);
  evbuffer_drain(in, 1);
  bufferevent_set_max_single_read(tls, kTlsIdleRead);
  small_ = true;
  if (enabled & EV_READ) bufferevent_enable(tls, EV_READ);
}

void TlsIdleReads::onData(bufferevent* tls) {
  if (!small_) return;
  small_ = false;
  bufferevent_set_max_single_read(tls, kTlsMaxRead);
}

}  // namespace sekisho::server
