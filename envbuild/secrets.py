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

from envbuild.fsutil import CHUNK, sha256_file

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
_TOKENS = re.compile(  # no leading \b: it would stop re from skipping ahead by first letter
    rb"(?:(?:AKIA|ASIA)[0-9A-Z]{16}"              # AWS access key id
    rb"|gh[pousr]_[A-Za-z0-9]{30,}"               # GitHub tokens
    rb"|github_pat_[A-Za-z0-9_]{30,}"
    rb"|glpat-[A-Za-z0-9_\-]{20,}"                # GitLab personal access token
    rb"|hf_[A-Za-z0-9]{30,}"                      # Hugging Face
    rb"|xox[abposr]-[A-Za-z0-9\-]{10,})")         # Slack
# NAME=value (shell, .env, argv): no spaces around "=", so Python's `api_key = load()` stays code;
# "name": "value" (JSON, YAML flow, Python dict literals). A name starts only where a run of name
# characters starts, and its parts are bounded: a long line is scanned in linear time.
_NAME = rb"[A-Za-z0-9_.\-]{0,64}?(?:TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL)[A-Za-z0-9_.\-]{0,64}"
_NAME_VALUE = re.compile(rb"(?i)(?<![A-Za-z0-9_.\-])(" + _NAME + rb"=)(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+)")
_QUOTED_NAME_VALUE = re.compile(rb"(?i)(\"" + _NAME + rb"\"\s*:\s*)\"[^\"\n]+\"")
_SECRET_WORDS_LOWER = (b"token", b"secret", b"passw", b"key", b"credential")
_FLAG = re.compile(r"(?i)^--?[a-z0-9_\-]*(token|secret|password|passwd|api[-_]?key|access[-_]?key|credential)[a-z0-9_\-]*$")


def _mask_pem(m: re.Match) -> bytes:
    # runs of base64 inside the block, line by line: the line count (and a diff's "+" prefixes) stay,
    # so a masked code.diff is still a well-formed patch
    return m.group(1) + _BASE64_RUN.sub(MASK.encode(), m.group(3)) + m.group(4)


def _lines_naming_a_secret(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line holding TOKEN, SECRET, PASSWORD, KEY or CREDENTIAL, any case, in order."""
    low = data.lower()
    spans = {}
    for word in _SECRET_WORDS_LOWER:
        i = low.find(word)
        while i != -1:
            start = low.rfind(b"\n", 0, i) + 1
            end = low.find(b"\n", i)
            end = len(low) if end == -1 else end
            spans[start] = end
            i = low.find(word, end)
    return sorted(spans.items())


def _safe_cut(data: bytes) -> int:
    """Where a block of a log can be masked on its own: after its last whole line, and before a
    private-key block that has not ended yet."""
    cut = data.rfind(b"\n") + 1
    begin = data.rfind(b"-----BEGIN", 0, cut)
    if begin != -1 and data.find(b"-----END", begin, cut) == -1:
        cut = data.rfind(b"\n", 0, begin) + 1
    return cut


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
        mask = MASK.encode()
        for pattern, repl in ((_PEM, _mask_pem), (self._known, mask), (_TOKENS, mask)):
            if pattern is not None:
                data, n = pattern.subn(repl, data)
                self._count(where, n)
        # NAME=value rules only on the lines that name a secret: scanning every line is slow
        out, last = [], 0
        for start, end in _lines_naming_a_secret(data):
            line = data[start:end]
            for pattern, repl in ((_NAME_VALUE, rb"\1" + mask), (_QUOTED_NAME_VALUE, rb'\1"' + mask + b'"')):
                line, n = pattern.subn(repl, line)
                self._count(where, n)
            out += [data[last:start], line]
            last = end
        return b"".join(out) + data[last:] if out else data

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
        """Mask a file in place (atomically, a block of whole lines at a time: logs can be large)."""
        path = Path(path)
        if not path.is_file():
            return
        before = self.masked.get(path.name, 0)
        tmp = path.with_name(f".{path.name}.masking")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            carry = b""
            while block := src.read(CHUNK):
                data = carry + block
                cut = _safe_cut(data) if len(data) < 8 * CHUNK else len(data)  # a monster line: as it is
                dst.write(self.bytes(data[:cut], path.name))
                carry = data[cut:]
            dst.write(self.bytes(carry, path.name))
        if self.masked.get(path.name, 0) == before:
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
