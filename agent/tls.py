"""TLS contexts from Flume's ssl keys, in Python terms.

Flume reads JKS/PKCS12 key and trust stores; flumelet reads PEM, which is what Python's
ssl module loads. Mapping (documented in the README):

- source ``keystore`` -> a PEM file holding the certificate chain and the private key
  (``keystore-password`` decrypts the key, if encrypted). Convert a JKS store with
  ``keytool -importkeystore -deststoretype PKCS12`` then ``openssl pkcs12 -nodes``.
- sink ``truststore`` -> a PEM file of CA certificates; none -> the system CAs, as Flume
  uses the JVM's. ``trust-all-certs = true`` disables verification (testing only).
- ``exclude-protocols`` / ``include-protocols`` take Java's names (TLSv1.2, TLSv1.3; TLS 1.0
  and 1.1 are never enabled); ``include-cipher-suites`` is handed to OpenSSL as a cipher list.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

# TLS 1.0 and 1.1 are never offered (deprecated by RFC 8996), whatever the keys say.
_VERSIONS = [
    ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.3", ssl.TLSVersion.TLSv1_3),
]


class TlsConfigError(ValueError):
    pass


def _apply_protocols(ctx: ssl.SSLContext, settings: Mapping[str, Any]) -> None:
    excluded = set(settings.get("exclude-protocols") or []) | {"SSLv3", "SSLv2Hello"}
    included = set(settings.get("include-protocols") or [])
    allowed = [v for name, v in _VERSIONS
               if name not in excluded and (not included or name in included)]
    if not allowed:
        raise TlsConfigError("include-protocols/exclude-protocols leave no TLS version")
    ctx.minimum_version = allowed[0]
    ctx.maximum_version = allowed[-1]
    ciphers = settings.get("include-cipher-suites") or []
    if ciphers:
        try:
            ctx.set_ciphers(":".join(ciphers))
        except ssl.SSLError as exc:
            raise TlsConfigError(f"include-cipher-suites: {exc}") from exc


def server_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    if not settings.get("ssl"):
        return None
    keystore = settings.get("keystore")
    if not keystore:
        raise TlsConfigError("ssl = true needs 'keystore' (a PEM file with certificate and key)")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(keystore, password=settings.get("keystore-password"))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load keystore {keystore}: {exc}") from exc
    _apply_protocols(ctx, settings)
    return ctx


def client_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    if not settings.get("ssl"):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.get("trust-all-certs"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif settings.get("truststore"):
        try:
            ctx.load_verify_locations(cafile=settings["truststore"])
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot load truststore {settings['truststore']}: {exc}") from exc
    _apply_protocols(ctx, settings)
    return ctx
