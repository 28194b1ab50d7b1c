"""Certificates for the stand-in platform's TLS site (the ``certificate`` break mode).

A private CA and two site certificates it signed for one host name: one that
expired yesterday, one good for a year. Clients that trust ``ca.pem`` see
exactly what a browser sees when a renewal was missed, and then after it was
done. Needs the ``cryptography`` package (installed with warroom).

    python examples/platform/certs.py DIR [--host localhost]

writes ``ca.pem``, ``expired.pem``/``expired.key`` and ``good.pem``/``good.key`` into DIR.
"""

from __future__ import annotations

import argparse
import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_NAMES = ("expired", "good")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_site_certs(directory: Path, host: str = "localhost") -> Path:
    """Write the CA and both site certificates for ``host`` (also valid for 127.0.0.1); return ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("stand-in platform test CA"))
        .issuer_name(_name("stand-in platform test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=800))
        .not_valid_after(now + timedelta(days=800))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    names: list[x509.GeneralName] = [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    windows = {"expired": (now - timedelta(days=366), now - timedelta(days=1)),
               "good": (now - timedelta(hours=1), now + timedelta(days=365))}
    for label, (start, end) in windows.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{label}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{label}.key").write_bytes(_key_pem(key))
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Certificates for the stand-in platform's TLS site.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--host", default="localhost", help="the host name the certificates are for")
    args = parser.parse_args(argv)
    print(make_site_certs(args.directory, args.host))


if __name__ == "__main__":
    main()
