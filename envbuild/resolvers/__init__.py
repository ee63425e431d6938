"""Resolvers: one interface, resolve a spec into a lockfile."""
