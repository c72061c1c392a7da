"""The octoDNS side of the benches: the script a separate Python runs to plan sipctl's SIP
block of a zone with octoDNS's own BIND provider (``octodns_bind.Rfc2136Provider``).

``SIP_BLOCK`` defines ``plan_zone(provider, zone)``: the NAPTR, SRV and A records sipctl
manages, scoped to those names with ``NameAllowlistFilter``; it returns how many changes
octoDNS plans. Each bench adds the lines that make the provider and read its arguments.
"""

SIP_BLOCK = """
from octodns.processor.filter import NameAllowlistFilter
from octodns.record import Record
from octodns.zone import Zone
from octodns_bind import Rfc2136Provider

NAMES = ["", "_sip._udp", "_sip._tcp", "_sips._tcp", "asterisk"]


def plan_zone(provider, zone):
    desired = Zone(zone + ".", [])
    def add(name, data):
        desired.add_record(Record.new(desired, name, {"ttl": 3600, **data}))
    add("", {"type": "NAPTR", "values": [
        {"order": o, "preference": 10, "flags": "S", "service": s, "regexp": "",
         "replacement": f"{p}.{zone}."}
        for o, s, p in ((10, "SIP+D2U", "_sip._udp"), (20, "SIP+D2T", "_sip._tcp"),
                        (30, "SIPS+D2T", "_sips._tcp"))]})
    for prefix, port_ in (("_sip._udp", 5060), ("_sip._tcp", 5060), ("_sips._tcp", 5061)):
        add(prefix, {"type": "SRV", "values": [
            {"priority": 10, "weight": 0, "port": port_, "target": f"asterisk.{zone}."}]})
    add("asterisk", {"type": "A", "value": "203.0.113.10"})
    plan = provider.plan(desired, processors=[NameAllowlistFilter("sip", NAMES)])
    return len(plan.changes) if plan else 0
"""
