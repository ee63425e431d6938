"""Secrets never enter a run directory or leave for MLflow.

Two rules, applied to everything envbuild copies out of the project or the container:
- a file whose *name* says it holds secrets (`.env`, `*.pem`, `id_rsa`, `credentials*.json`, `.netrc` ...)
  is never copied: it is listed by path and sha256 in the record's `withheld.files`;
- a *value* that looks like a secret (a PEM private key, an AWS access key id, a GitHub, GitLab,
  Hugging Face or Slack token, the value of a `NAME=value` whose name says TOKEN, SECRET, PASSWORD or
  KEY, or the value of a secret-named variable given to the container) is replaced by `***` in the
  captured logs, the command arguments, the params and code.diff; the record counts what was masked
  in `withheld.masked`.

This is a pattern scan: it catches the common shapes, not every secret. Names and values it
misses are the user's to keep out of the project (or in .gitignore, which code.diff honours).
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any, Iterable

from envbuild.fsutil import sha256_file

MASK = "***"
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")

# file names (matched against the base name, case-insensitively)
SECRET_FILES = (".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*", "id_ecdsa*",
                "id_ed25519*", "credentials*.json", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".pypirc",
                "*.keystore", "*.jks", "service-account*.json")
_NOT_SECRET_FILES = ("*.pub", ".env.example", ".env.sample", ".env.template")

_PEM = re.compile(rb"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----)",
                  re.S)
_BASE64_RUN = re.compile(rb"[A-Za-z0-9/=][A-Za-z0-9+/=]{3,}")
_TOKENS = re.compile(
    rb"\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}"           # AWS access key id
    rb"|gh[pousr]_[A-Za-z0-9]{30,}"               # GitHub tokens
    rb"|github_pat_[A-Za-z0-9_]{30,}"
    rb"|glpat-[A-Za-z0-9_\-]{20,}"                # GitLab personal access token
    rb"|hf_[A-Za-z0-9]{30,}"                      # Hugging Face
    rb"|xox[abposr]-[A-Za-z0-9\-]{10,})")         # Slack
# NAME=value (shell, .env, argv): no spaces around "=", so Python's `api_key = load()` stays code
_WORDS = rb"(?:TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL)"
_ASSIGN = re.compile(rb"(?i)\b([A-Za-z0-9_.\-]*" + _WORDS + rb"[A-Za-z0-9_]*=)(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+)")
# "name": "value" (JSON, YAML flow, Python dict literals)
_QUOTED_ASSIGN = re.compile(rb"(?i)(\"[A-Za-z0-9_.\-]*" + _WORDS + rb"[A-Za-z0-9_.\-]*\"\s*:\s*)\"[^\"\n]+\"")
_FLAG = re.compile(r"(?i)^--?[a-z0-9_\-]*(token|secret|password|passwd|api[-_]?key|access[-_]?key|credential)[a-z0-9_\-]*$")


def _mask_pem(m: re.Match) -> bytes:
    # runs of base64 inside the block, line by line: the line count (and a diff's "+" prefixes) stay,
    # so a masked code.diff is still a well-formed patch
    return m.group(1) + _BASE64_RUN.sub(MASK.encode(), m.group(3)) + m.group(4)


def is_secret_name(name: str) -> bool:
    """A variable name that says it holds a secret (TOKEN, KEY, SECRET, PASSWORD, CREDENTIAL)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def is_secret_file(path: str | Path) -> bool:
    name = Path(path).name.lower()
    if any(fnmatch.fnmatchcase(name, p) for p in _NOT_SECRET_FILES):
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in SECRET_FILES)


def withheld_file(root: Path, rel: str, reason: str = "secret file name") -> dict[str, Any]:
    """The record's entry for a file not copied: path, sha256 (to tell versions apart), bytes."""
    full = Path(root) / rel
    try:
        digest, size = sha256_file(full), full.stat().st_size
    except OSError:  # deleted (a change git reports) or unreadable: still named
        digest, size = None, None
    return {"path": rel, "sha256": digest, "bytes": size, "reason": reason}


class Masker:
    """What one run withholds: masks secret-looking values (`known` are literal values to mask too:
    those of the secret-named variables the run was given), collects the files left out, and
    counts the masked values per place ("code.diff", "stdout.log", "command" ...)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._values: set[bytes] = set()
        self._known: re.Pattern | None = None
        for value in known:
            self.remember(value)
        self.files: list[dict[str, Any]] = []
        self.masked: dict[str, int] = {}

    def remember(self, value: str) -> None:
        """Mask this literal value from now on (a secret the run was given, wherever it turns up)."""
        # short values would mask half the log ("1", "true"): only values worth hiding
        if len(value) >= 6 and value != MASK and value.encode() not in self._values:
            self._values.add(value.encode())
            ordered = sorted(self._values, key=len, reverse=True)
            self._known = re.compile(b"|".join(re.escape(v) for v in ordered))

    def section(self) -> dict[str, Any]:
        """The record's `withheld` field."""
        return {"files": sorted(self.files, key=lambda f: f["path"]),
                "masked": {k: n for k, n in sorted(self.masked.items()) if n}}

    def _count(self, where: str, n: int) -> None:
        self.masked[where] = self.masked.get(where, 0) + n

    def bytes(self, data: bytes, where: str) -> bytes:
        keep_name = lambda m: m.group(1) + MASK.encode()  # noqa: E731
        rules = [(_PEM, _mask_pem), (self._known, MASK.encode()), (_TOKENS, MASK.encode()),
                 (_ASSIGN, keep_name), (_QUOTED_ASSIGN, lambda m: m.group(1) + b'"***"')]
        for pattern, repl in rules:
            if pattern is not None:
                data, n = pattern.subn(repl, data)
                self._count(where, n)
        return data

    def text(self, value: str, where: str) -> str:
        return self.bytes(value.encode(), where).decode(errors="replace")

    def argv(self, args: list[str]) -> list[str]:
        """Each argument masked; the argument after `--token`, `--password`, `--api-key` ... too."""
        out: list[str] = []
        for arg in args:
            if out and _FLAG.match(out[-1]) and not arg.startswith("-"):
                self._count("command", 1)
                self.remember(arg)  # the script may print its arguments
                out.append(MASK)
            else:
                masked = self.text(arg, "command")
                if masked != arg and "=" in arg:
                    self.remember(arg.split("=", 1)[1])
                out.append(masked)
        return out

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in params.items():
            if is_secret_name(str(k)) and v not in (None, "", MASK):
                self._count("params", 1)
                out[k] = MASK
            else:
                out[k] = self.text(v, "params") if isinstance(v, str) else v
        return out

    def file(self, path: Path) -> None:
        """Mask a file in place (atomically, line by line: logs can be large)."""
        path = Path(path)
        if not path.is_file():
            return
        before = self.masked.get(path.name, 0)
        tmp = path.with_name(f".{path.name}.masking")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            # a PEM block spans lines: keep a block's lines together until its END line
            pending = b""
            for line in src:
                if pending or b"PRIVATE KEY" in line and b"-----BEGIN" in line:
                    pending += line
                    if b"-----END" not in line and len(pending) < (1 << 20):
                        continue
                    line, pending = pending, b""
                dst.write(self.bytes(line, path.name))
            dst.write(self.bytes(pending, path.name))
        if self.masked.get(path.name, 0) == before:
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
