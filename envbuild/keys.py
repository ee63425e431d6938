"""The local signing key for attestations: ECDSA P-256 (cosign's default), fully offline.

    $ENVBUILD_KEYS_DIR (default ~/.config/envbuild/keys)/
        envbuild.key   PKCS#8 PEM private key, mode 0600, never in a project
        envbuild.pub   SubjectPublicKeyInfo PEM: what `cosign verify-attestation --key` reads

The private key is not encrypted (like an ssh key without a passphrase): the directory's and the
file's modes protect it. Signatures are ASN.1 DER ECDSA over SHA-256, as cosign writes them; the key
id is the key's SSH SHA-256 fingerprint (a hint only: DSSE never trusts it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from envbuild.errors import EXIT_FAILURE, EnvbuildError

PRIVATE, PUBLIC = "envbuild.key", "envbuild.pub"


def keys_dir() -> Path:
    env = os.environ.get("ENVBUILD_KEYS_DIR")
    if env:
        return Path(env)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "envbuild" / "keys"


def key_id(public_pem: bytes) -> str:
    """`SHA256:<base64>`, the SSH fingerprint of the key: what go-securesystemslib's DSSE verifier (in
    cosign) derives for a key without an id, so a signature carrying it is not skipped there."""
    import base64

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem)
    wire = base64.b64decode(key.public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")


def signer_id(private_key) -> str:
    """key_id of the public half of a private key: the id a signature made with it carries."""
    from cryptography.hazmat.primitives import serialization

    return key_id(private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def generate(directory: Path | None = None, force: bool = False) -> KeyPair:
    """A new P-256 key pair in `directory`; an existing one is kept unless `force`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from envbuild.fsutil import atomic_write_bytes

    d = directory or keys_dir()
    pair = KeyPair(d / PRIVATE, d / PUBLIC)
    if pair.private.exists() and not force:
        raise EnvbuildError(f"{pair.private} exists; keep it, or replace it (old attestations stop verifying "
                            "with the new key) with envbuild keys generate --force")
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    atomic_write_bytes(pair.private, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()), mode=0o600)
    atomic_write_bytes(pair.public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return pair


def default_public() -> Path:
    return keys_dir() / PUBLIC


def load_private(path: Path | None = None):
    """The signing key, or None when none was generated."""
    from cryptography.hazmat.primitives import serialization

    path = path or keys_dir() / PRIVATE
    if not path.is_file():
        return None
    if path.stat().st_mode & 0o077:
        raise EnvbuildError(f"{path}: readable by others (mode {path.stat().st_mode & 0o777:o}); chmod 600 {path}")
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise EnvbuildError(f"{path}: not an unencrypted PEM private key ({e}); run envbuild keys generate --force",
                            EXIT_FAILURE) from None


def load_public(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as e:
        raise EnvbuildError(f"{path}: cannot read the public key ({e.strerror}); give --key PUB, or run "
                            "envbuild keys generate") from None
    except ValueError:
        raise EnvbuildError(f"{path}: not a PEM public key; give the .pub file envbuild keys generate wrote") from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        raise EnvbuildError(f"{path}: a {type(key).__name__}; envbuild verifies ECDSA P-256 and Ed25519 keys")
    return key


def sign(private_key, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    return private_key.sign(data)  # Ed25519


def verifies(public_key, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(signature, data)
        return True
    except InvalidSignature:
        return False
