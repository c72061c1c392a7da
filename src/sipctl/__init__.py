"""sipctl: make a company's own domain reachable for SIP calls, from one YAML spec in git."""

__version__ = "0.1.0"
