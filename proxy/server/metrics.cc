#include "proxy/server/metrics.h"

namespace sekisho::server {

const char* reasonName(Reason r) {
  switch (r) {
    case Reason::None: return "";
    case Reason::ClientNotAllowed: return "client_not_allowed";
    case Reason::ConnectPortNotAllowed: return "connect_port_not_allowed";
    case Reason::PortNotAllowed: return "port_not_allowed";
    case Reason::DestinationNotAllowed: return "destination_not_allowed";
    case Reason::ReputationBlock: return "reputation_block";
    case Reason::BadRequest: return "bad_request";
    case Reason::AmbiguousFraming: return "ambiguous_framing";
    case Reason::UriTooLong: return "uri_too_long";
    case Reason::HeadersTooLarge: return "headers_too_large";
    case Reason::BodyTooLarge: return "body_too_large";
    case Reason::NotImplemented: return "not_implemented";
    case Reason::UnsupportedScheme: return "unsupported_scheme";
    case Reason::DnsFailed: return "dns_failed";
    case Reason::ConnectFailed: return "connect_failed";
    case Reason::ConnectTimeout: return "connect_timeout";
    case Reason::UpstreamTimeout: return "upstream_timeout";
    case Reason::BadResponse: return "bad_response";
    case Reason::UpstreamReset: return "upstream_reset";
    case Reason::LoopDetected: return "loop_detected";
    case Reason::RequestTimeout: return "request_timeout";
    case Reason::NotFound: return "not_found";
    case Reason::TooManyConnections: return "too_many_connections";
    case Reason::ShuttingDown: return "shutting_down";
    case Reason::UpstreamCertInvalid: return "upstream_cert_invalid";
    case Reason::UpstreamTlsFailed: return "upstream_tls_failed";
    case Reason::MisdirectedRequest: return "misdirected_request";
    case Reason::ReputationUnavailable: return "reputation_unavailable";
    case Reason::Count_: break;
  }
  return "unknown";
}

}  // namespace sekisho::server
