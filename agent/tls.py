"""TLS settings (Flume's ssl keys) and the contexts they make, in Python terms.

Flume reads JKS/PKCS12 key and trust stores; flumelet reads PEM, which is what Python's
ssl module loads. Mapping (documented in the README):

- source ``keystore`` -> a PEM file holding the certificate chain and the private key
  (``keystore-password`` decrypts the key, if encrypted). Convert a JKS store with
  ``keytool -importkeystore -deststoretype PKCS12`` then ``openssl pkcs12 -nodes``.
- sink ``truststore`` -> a PEM file of CA certificates; none -> the system CAs, as Flume
  uses the JVM's. ``trust-all-certs = true`` disables verification (testing only).
- ``exclude-protocols`` / ``include-protocols`` take Java's names (TLSv1.2, TLSv1.3; TLS 1.0
  and 1.1 are never enabled); ``include-cipher-suites`` is handed to OpenSSL as a cipher list.

The keys and rules below are shared by every component that speaks TLS; the rules build the
context once, so a key store that cannot be loaded is reported by ``--validate``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from agent.config.converters import to_bool, to_words
from agent.config.issues import IssueCode
from agent.config.schema import Key, Problem, RuleContext

# TLS 1.0 and 1.1 are never offered (deprecated by RFC 8996), whatever the keys say.
_VERSIONS = [
    ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.3", ssl.TLSVersion.TLSv1_3),
]

_PROTOCOL_KEYS = (
    Key("exclude-protocols", to_words, ["SSLv3"]),
    Key("include-protocols", to_words, []),
    Key("exclude-cipher-suites", to_words, [], ignored="OpenSSL takes an include list only"),
    Key("include-cipher-suites", to_words, []),
)
SERVER_KEYS = (
    Key("ssl", to_bool, False),
    Key("keystore"),
    Key("keystore-password"),
    Key("keystore-type", default="JKS", ignored="a PEM file is read whatever the type"),
    *_PROTOCOL_KEYS,
)
CLIENT_KEYS = (
    Key("ssl", to_bool, False),
    Key("trust-all-certs", to_bool, False),
    Key("truststore"),
    Key("truststore-password", ignored="a PEM bundle needs no password"),
    Key("truststore-type", default="JKS", ignored="a PEM file is read whatever the type"),
    *_PROTOCOL_KEYS,
)


class TlsConfigError(ValueError):
    pass


def _fill_from_environment(
    settings: dict[str, Any], ctx: RuleContext, store: str, env_prefix: str
) -> None:
    """Flume's FLUME_SSL_* variables give a store's path, password and type unless the
    component sets them."""
    for suffix, env_name in (("", "PATH"), ("-password", "PASSWORD"), ("-type", "TYPE")):
        key = store + suffix
        value = ctx.env.get(f"{env_prefix}_{env_name}")
        if key not in ctx.present and value:
            settings[key] = value
    if "SSLv3" not in settings["exclude-protocols"]:
        settings["exclude-protocols"] = [*settings["exclude-protocols"], "SSLv3"]


def server_rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    _fill_from_environment(settings, ctx, "keystore", "FLUME_SSL_KEYSTORE")
    if settings["ssl"] and not settings["keystore"]:
        return [
            Problem(
                IssueCode.MISSING_REQUIRED,
                "ssl = true needs 'keystore' (or FLUME_SSL_KEYSTORE_PATH in the environment)",
                "ssl",
            )
        ]
    return _try(server_context, settings, "keystore")


def client_rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    _fill_from_environment(settings, ctx, "truststore", "FLUME_SSL_TRUSTSTORE")
    return _try(client_context, settings, "truststore")


def _try(make: Any, settings: Mapping[str, Any], store: str) -> list[Problem]:
    try:
        make(settings)
    except TlsConfigError as exc:
        key = store if store in str(exc) else "include-protocols"
        return [Problem(IssueCode.BAD_VALUE, str(exc), key)]
    return []


def _read(settings: Mapping[str, Any], *keys: str) -> list[Any]:
    """Every key at once (absent: None), so a component without TLS keys (built from a plain
    mapping) works and validated settings are read in full whatever ``ssl`` says."""
    return [settings.get(key) for key in keys]


_PROTOCOLS = ("exclude-protocols", "include-protocols", "include-cipher-suites")


def _apply_protocols(ctx: ssl.SSLContext, protocols: list[Any]) -> None:
    excluded, included, ciphers = protocols
    excluded = set(excluded or ()) | {"SSLv3", "SSLv2Hello"}
    allowed = [v for name, v in _VERSIONS
               if name not in excluded and (not included or name in included)]
    if not allowed:
        raise TlsConfigError("include-protocols/exclude-protocols leave no TLS version")
    ctx.minimum_version = allowed[0]
    ctx.maximum_version = allowed[-1]
    if ciphers:
        try:
            ctx.set_ciphers(":".join(ciphers))
        except ssl.SSLError as exc:
            raise TlsConfigError(f"include-cipher-suites: {exc}") from exc


def server_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    on, keystore, password = _read(settings, "ssl", "keystore", "keystore-password")
    protocols = _read(settings, *_PROTOCOLS)
    if not on:
        return None
    if not keystore:
        raise TlsConfigError("ssl = true needs 'keystore' (a PEM file with certificate and key)")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(keystore, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load keystore {keystore}: {exc}") from exc
    _apply_protocols(ctx, protocols)
    return ctx


def client_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    on, trust_all, truststore = _read(settings, "ssl", "trust-all-certs", "truststore")
    protocols = _read(settings, *_PROTOCOLS)
    if not on:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if trust_all:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif truststore:
        try:
            ctx.load_verify_locations(cafile=truststore)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot load truststore {truststore}: {exc}") from exc
    _apply_protocols(ctx, protocols)
    return ctx
