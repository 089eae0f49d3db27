// Addresses: IPv4/IPv6 socket addresses, "ip:port" parsing, CIDR sets for ACLs, port ranges.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sekisho::net {

// An IPv4 or IPv6 address with a port. IPv4-mapped IPv6 addresses are stored as IPv4.
struct SocketAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  static std::optional<SocketAddr> fromSockaddr(const sockaddr* sa, socklen_t len);
  int family() const { return ss.ss_family; }
  uint16_t port() const;
  void setPort(uint16_t port);
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
  // IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) count as the IPv4 address they reach.
  bool isLoopback() const;                     // 127.0.0.0/8, ::1
  bool isAny() const;                          // 0.0.0.0 or ::
  bool isLinkLocal() const;                    // 169.254.0.0/16 (cloud metadata), fe80::/10
  bool sameIp(const SocketAddr& other) const;  // ignores the port
  bool operator==(const SocketAddr& other) const { return sameIp(other) && port() == other.port(); }
  std::string ipString() const;                // "10.1.2.3" or "::1"
  std::string toString() const;                // "10.1.2.3:80" or "[::1]:80"
};

// A literal IP address (no port). "[::1]" brackets are accepted.
std::optional<SocketAddr> parseIp(std::string_view text);
// "ip:port", "[v6]:port" or ":port"/"port" (all interfaces is refused: the caller decides).
std::optional<SocketAddr> parseIpPort(std::string_view text);

struct Cidr {
  SocketAddr base;  // port unused
  unsigned prefix = 0;
  bool contains(const SocketAddr& addr) const;
  std::string toString() const;
};
// "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). Host bits must be zero.
std::optional<Cidr> parseCidr(std::string_view text);

struct CidrSet {
  std::vector<Cidr> entries;
  bool contains(const SocketAddr& addr) const;
};

struct PortRange {
  uint16_t lo = 0, hi = 0;
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
};
bool portAllowed(const std::vector<PortRange>& ranges, uint16_t port);

}  // namespace sekisho::net
