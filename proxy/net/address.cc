#include "proxy/net/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "proxy/base/strings.h"

namespace sekisho::net {

namespace {
const uint8_t* ipBytes(const SocketAddr& a, size_t& n) {
  if (a.family() == AF_INET) {
    n = 4;
    return reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr);
  }
  n = 16;
  return reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr);
}
}  // namespace

std::optional<SocketAddr> SocketAddr::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddr out;
  if (sa->sa_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
    memcpy(&out.ss, sa, sizeof(sockaddr_in));
    out.len = sizeof(sockaddr_in);
    return out;
  }
  if (sa->sa_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&out.ss);
      s4->sin_family = AF_INET;
      s4->sin_port = s6->sin6_port;
      memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
      out.len = sizeof(sockaddr_in);
      return out;
    }
    memcpy(&out.ss, sa, sizeof(sockaddr_in6));
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  return std::nullopt;
}

uint16_t SocketAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

void SocketAddr::setPort(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
}

namespace {
// The IPv4 address (host order) of an AF_INET address or of an IPv4-mapped IPv6 one
// (::ffff:a.b.c.d, which connect() reaches as a.b.c.d); nullopt for any other.
std::optional<uint32_t> v4Of(const SocketAddr& a) {
  if (a.family() == AF_INET) return ntohl(reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr);
  if (a.family() != AF_INET6) return std::nullopt;
  const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr;
  if (!IN6_IS_ADDR_V4MAPPED(&v6)) return std::nullopt;
  uint32_t v;
  memcpy(&v, &v6.s6_addr[12], 4);
  return ntohl(v);
}
}  // namespace

bool SocketAddr::isLoopback() const {
  if (auto v4 = v4Of(*this)) return (*v4 >> 24) == 127;
  if (family() == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
  return false;
}

bool SocketAddr::isAny() const {
  if (auto v4 = v4Of(*this)) return *v4 == INADDR_ANY;
  if (family() == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
  return false;
}

bool SocketAddr::isLinkLocal() const {
  if (auto v4 = v4Of(*this)) return (*v4 >> 16) == 0xA9FE;  // 169.254.0.0/16
  if (family() == AF_INET6) return IN6_IS_ADDR_LINKLOCAL(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
  return false;
}

bool SocketAddr::sameIp(const SocketAddr& other) const {
  if (family() != other.family()) return false;
  size_t n1, n2;
  const uint8_t* a = ipBytes(*this, n1);
  const uint8_t* b = ipBytes(other, n2);
  return n1 == n2 && memcmp(a, b, n1) == 0;
}

std::string SocketAddr::ipString() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  else if (family() == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  return buf;
}

std::string SocketAddr::toString() const {
  if (family() == AF_INET6) return "[" + ipString() + "]:" + std::to_string(port());
  return ipString() + ":" + std::to_string(port());
}

std::optional<SocketAddr> parseIp(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  SocketAddr out;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&out.ss);
  if (inet_pton(AF_INET, s.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    out.len = sizeof(sockaddr_in);
    return out;
  }
  sockaddr_in6 s6{};
  if (inet_pton(AF_INET6, s.c_str(), &s6.sin6_addr) == 1) {
    s6.sin6_family = AF_INET6;
    return SocketAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&s6), sizeof s6);
  }
  return std::nullopt;
}

std::optional<SocketAddr> parseIpPort(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  auto port = parseDecimal(text.substr(colon + 1), 65535);
  if (!port) return std::nullopt;
  if (host.find(':') != std::string_view::npos && !(host.size() > 2 && host.front() == '[')) return std::nullopt;
  auto addr = parseIp(host);
  if (!addr) return std::nullopt;
  addr->setPort(uint16_t(*port));
  return addr;
}

bool Cidr::contains(const SocketAddr& addr) const {
  if (addr.family() != base.family()) return false;
  size_t n1, n2;
  const uint8_t* a = ipBytes(addr, n1);
  const uint8_t* b = ipBytes(base, n2);
  unsigned full = prefix / 8, rest = prefix % 8;
  if (memcmp(a, b, full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = uint8_t(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

std::string Cidr::toString() const { return base.ipString() + "/" + std::to_string(prefix); }

std::optional<Cidr> parseCidr(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = parseIp(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned maxPrefix = addr->family() == AF_INET ? 32 : 128;
  unsigned prefix = maxPrefix;
  if (slash != std::string_view::npos) {
    auto p = parseDecimal(text.substr(slash + 1), maxPrefix);
    if (!p) return std::nullopt;
    prefix = unsigned(*p);
  }
  // Host bits must be zero: "10.1.2.3/8" is almost always a typo for something else.
  size_t n;
  const uint8_t* b = ipBytes(*addr, n);
  for (size_t bit = prefix; bit < n * 8; ++bit)
    if (b[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  return Cidr{*addr, prefix};
}

bool CidrSet::contains(const SocketAddr& addr) const {
  for (const auto& c : entries)
    if (c.contains(addr)) return true;
  return false;
}

bool portAllowed(const std::vector<PortRange>& ranges, uint16_t port) {
  for (const auto& r : ranges)
    if (r.contains(port)) return true;
  return false;
}

}  // namespace sekisho::net
