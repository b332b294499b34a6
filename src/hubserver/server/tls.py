"""Server-side TLS context from a PEM certificate chain and private key, with clear errors.

``HubServer(ssl_context=load_tls_context(cert, key))`` serves ``https://`` and ``wss://``
without a proxy in front (docs/deploy.md "TLS without a proxy"). A missing, unreadable,
non-PEM or mismatched file is reported as :class:`TlsConfigError` naming the file, before
the server binds anything.
"""

from __future__ import annotations

import ssl
from pathlib import Path

_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"
_KEY_MARKER = b"PRIVATE KEY-----"


class TlsConfigError(ValueError):
    """The certificate or key cannot be used; the message says which file and why."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsConfigError(f"TLS {what} file not found: {path}") from None
    except IsADirectoryError:
        raise TlsConfigError(f"TLS {what} path is a directory: {path}") from None
    except PermissionError:
        raise TlsConfigError(f"TLS {what} file is not readable: {path}") from None
    except OSError as exc:
        raise TlsConfigError(f"TLS {what} file cannot be read: {path} ({exc})") from None


def load_tls_context(
    cert_file: str | Path, key_file: str | Path, password: str | None = None
) -> ssl.SSLContext:
    """A server context (TLS 1.2 or newer, ALPN ``http/1.1``) for ``cert_file``/``key_file``.

    Args:
        cert_file: PEM certificate, followed by its intermediate certificates if any.
        key_file: PEM private key of the first certificate (may be the same file).
        password: Passphrase of an encrypted key.

    Raises:
        TlsConfigError: A file is missing, unreadable or not PEM, the key is encrypted and no
            (or a wrong) password was given, or the key does not match the certificate.
    """
    cert_path, key_path = Path(cert_file), Path(key_file)
    if _CERT_MARKER not in _read(cert_path, "certificate"):
        raise TlsConfigError(f"TLS certificate file holds no PEM certificate: {cert_path}")
    if _KEY_MARKER not in _read(key_path, "key"):
        raise TlsConfigError(f"TLS key file holds no PEM private key: {key_path}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Only HTTP/1.1 is spoken: a client offering h2 must not pick it.
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert_path, key_path, password=password)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in reason:
            raise TlsConfigError(
                f"TLS key {key_path} does not belong to the certificate {cert_path}"
            ) from None
        raise TlsConfigError(
            f"TLS certificate {cert_path} or key {key_path} cannot be loaded: {reason}"
        ) from None
    return context
