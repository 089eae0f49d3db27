// ca: the enterprise root CA and the leaf certificates minted under it for TLS interception.
//   ca_store.h   initCa / loadCa / loadOrCreateCa -> shared_ptr<const Ca> (cert, key 0600, chain,
//                CaId, SHA-256 fingerprint, PEM/DER for /ca.crt and /ca.der)
//   leaf_minter.h  validateDnsName, mintLeaf(Ca, LeafRequest) -> MintedLeaf (own P-256 key,
//                SHA-256, SANs as GENERAL_NAMEs, notAfter capped by the origin)
//   cert_cache.h  CertCache: bounded LRU shared by all workers, one mint per key
//   leaf_disk_cache.h  LeafDiskCache: optional on-disk copy (tls.leaf_cache_dir), background
//                writer, loaded at start-up so a restart stays warm
//   ca_cli.h     caInitCommand / caExportCommand for `sekisho ca init|export`
// Used by tls-mitm and the proxy app; depends only on proxy/base and OpenSSL 3.
#pragma once
#include "ca/ca_cli.h"
#include "ca/ca_store.h"
#include "ca/cert_cache.h"
#include "ca/leaf_disk_cache.h"
#include "ca/leaf_minter.h"
