"""DNS providers (RFC 2136 servers, zone files) and what they share: the owned names, the
queries that read them, the DNS lock."""
