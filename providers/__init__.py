"""Providers: one module per live system. Only providers touch the network or the disk."""
