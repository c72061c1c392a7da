"""The labels sipctl writes before a domain or a host: the owner names of its own records.

Plain text, no dnspython: ``validate`` checks that a spec's names leave room for them
(``schemas/spec_rules.dns_names_fit``) without importing a DNS library, and
``dns_records`` builds the names from them.
"""

from __future__ import annotations

# The SRV owner name of each transport (RFC 3263). wss (RFC 7118) is published only with
# dns.naptr_websocket: browsers never query it.
SRV_PREFIX = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp", "wss": "_sips._ws"}
REGISTRY_PREFIX = "_sipctl"
LOCK_PREFIX = "_sipctl-lock"
STATE_PREFIX = "_sipctl-state"  # the record of the last apply, for drift
# At a host whose A/AAAA sipctl owns: one TXT record per domain whose servers use that host,
# so that a domain that stops using it deletes its addresses only when no other domain of
# the zone still does (a domain's own registry cannot say so: sipctl never reads the whole
# zone to find the other domains). Its own prefix: a host may be named like a domain.
CLAIM_PREFIX = "_sipctl-claim"
