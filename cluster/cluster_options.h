// cluster_options.h - how synchmessd reaches its NATS JetStream cluster
// (--cluster and the --cluster-* options, daemon/options.h).
// Plain data; the defaults are the documented ones (docs/abi.md "Cluster
// groups").  Thread safety: a value, copied at start.
#pragma once

#include <string>

namespace synchmess {

struct ClusterOptions {
  // "nats://[user:password@]host:port[,...]" (tls:// for TLS; a token as
  // nats://token@host:port); empty: no cluster.
  std::string servers;
  unsigned replicas = 3;       // stream replicas (1..5)
  std::string prefix = "synchmess";  // subjects PREFIX.*, streams PREFIX_g<d>
  std::string creds;           // NATS credentials file (JWT + nkey)
  std::string tls_ca;          // CA file: TLS with verification
  std::string tls_cert, tls_key;  // client certificate and key
  unsigned timeout_ms = 2000;  // a request's deadline for its NATS calls
  unsigned gather_ms = 1000;   // how long AWAKE/FLUSH wait for other hosts
  unsigned workers = 8;        // threads for NATS calls
};

}  // namespace synchmess
