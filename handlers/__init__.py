"""Thin HTTP handlers: decode, call the store, encode. They never build Redis key names."""
