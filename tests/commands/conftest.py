"""Fixtures the command tests share, taken from one place so the session-scoped project is made once
for all of them: the small six project of test_reproduce (locked, built and committed once a
session) and a fresh copy of it per test."""

from tests.commands.test_reproduce import proj, template  # noqa: F401 (fixtures)
