"""verify: resolve like a SIP client (RFC 3263) and probe; compare what was found with the spec."""
