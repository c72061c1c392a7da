"""Firewall providers (iptables, nftables) and their confirm-or-rollback."""
