// Judge: every reputation lookup of one client connection, in one place: the URL, host and parent
// domains of a request before anything is contacted, its addresses after resolving, and the name
// a tunnel's ClientHello asks for (SNI). Local lists (in-process, synchronous) and Redis (from the
// worker's cache, or asynchronously within reputation.deadline) are asked together and the policy
// decides; reputation.on_error decides when the store cannot answer.
//
// A Judge owns its lookup in flight (the ticket the answer must carry, the continuation) and the
// SNI verdict of its tunnel; it never touches a socket or the connection's state. The caller
// turns a Ruling into a page, a TLS block or the next phase (ClientConn::checkReputation), and
// while a lookup is pending keeps the connection in ConnState::Judge with the deadline backstop
// (expire()).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/net/address.h"
#include "reputation/embedded_store.h"
#include "reputation/policy.h"
#include "reputation/redis_store.h"

namespace sekisho::server {

class Worker;

class Judge {
 public:
  Judge(Worker& w, uint64_t connId) : w_(&w), connId_(connId) {}
  Judge(const Judge&) = delete;
  Judge& operator=(const Judge&) = delete;

  enum class Outcome : uint8_t {
    Allow,      // no rule blocks (or on_error: open and the store could not answer)
    Block,      // `detail`: the policy's reason ("c2 (source threatfox, rule domain:evil.example)")
    Unavailable,// on_error: closed and the store could not answer; `detail` says why
    Unchecked,  // on_error: closed and the name cannot be expressed as a reputation key
  };
  struct Ruling {
    Outcome outcome = Outcome::Allow;
    std::string detail;
  };

  // What is asked about a request: `url` (the URL as the user knows it; empty for a CONNECT) and
  // `host` before resolving, or `addrs` after.
  struct Query {
    std::string_view url;
    std::string_view host;
    const std::vector<net::SocketAddr>* addrs = nullptr;
    std::string_view client;
    int64_t now = 0;
  };
  // Calls `done` exactly once, now or when the store answers; true when that happened before
  // returning. Re-entered only after `done` ran (one lookup at a time per connection).
  bool judgeRequest(const Query& q, std::function<void(Ruling)> done);

  // The verdict on a tunnel's SNI when it differs from the CONNECT host, kept for the rest of the
  // tunnel. False while the store has not answered; `resume` runs when it does (never from
  // inside this call). sniDecision(): nullopt when nothing matched or the name cannot be checked;
  // a store that cannot answer with on_error: closed is a block.
  bool judgeSni(const std::string& sni, std::string_view client, int64_t now, std::function<void()> resume);
  bool sniPending() const { return sni_ == SniState::Pending; }
  const std::optional<reputation::Decision>& sniDecision() const { return sniDecision_; }

  bool enabled() const;                 // a store is configured at all
  bool pending() const { return ticket_ != 0; }
  uint64_t ticket() const { return ticket_; }
  void cancel();                        // the connection closes: the answer will not be delivered
  // The deadline backstop (the store answers every lookup by its deadline): the pending lookup
  // ends as "no answer in time". False when nothing was pending.
  bool expire();

 private:
  struct Verdict {
    std::optional<reputation::Decision> decision;  // nullopt: no rule matched
    bool storeOk = true;                           // false: Redis down, slow or garbled (error says)
    std::string error;
  };
  bool lookup(const reputation::LookupKeys& keys, reputation::Facts facts, std::function<void(Verdict)> done);
  Ruling rule(Verdict v, std::string_view client) const;

  Worker* w_;
  uint64_t connId_;
  uint64_t ticket_ = 0;  // the Redis lookup in flight (0: none)
  std::shared_ptr<std::function<void(reputation::StoreAnswer)>> resume_;
  enum class SniState : uint8_t { None, Pending, Done };
  SniState sni_ = SniState::None;
  std::optional<reputation::Decision> sniDecision_;
};

}  // namespace sekisho::server
