"""TLS for the simulated hosts: a CA and a host certificate made per run.

Real hosts serve XenAPI over https on 443 (and plain http on 80 unless
``https_only`` is set, xen-api ``ocaml/idl/datamodel_host.ml``).  A stock
host's certificate is self-signed (``ocaml/gencert/selfcert.ml``); an
operator either installs one signed by their CA or hands the driver the
host's certificate as ``ca_file``.  The simulator does the former: one CA
per run, whose file a client needs (``SimulatedPool.ca_file``, and
``ca_file`` in the CLI's JSON line), and one certificate naming every
simulated host's address.  Nothing is trusted by default.  A simulator
restarted on the same state directory keeps them, as a real host keeps its
certificate across a toolstack restart.
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=30)


class Credentials:
    """The files of one run: ``ca_file``, ``cert_file``, ``key_file``."""

    def __init__(self, directory: str, addresses: list[str]) -> None:
        folder = pathlib.Path(directory) / 'tls'
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = str(folder / 'ca.pem')
        self.cert_file = str(folder / 'host.pem')
        self.key_file = str(folder / 'host.key')
        if not _reusable(folder, addresses):
            _write(folder, addresses)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a client configured with ``ca_file`` uses."""
        return ssl.create_default_context(cafile=self.ca_file)


def _reusable(folder: pathlib.Path, addresses: list[str]) -> bool:
    """Whether the files of a previous run in this state directory still
    serve: a restarted simulator keeps its CA, so clients configured with
    its ``ca_file`` keep working, as a real host keeps its certificate."""
    try:
        cert = x509.load_pem_x509_certificate(
            (folder / 'host.pem').read_bytes()
        )
        (folder / 'ca.pem').read_bytes()
        (folder / 'host.key').read_bytes()
    except (OSError, ValueError):
        return False
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc - now < datetime.timedelta(days=1):
        return False
    names = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.IPAddress)
    return {ipaddress.ip_address(a) for a in addresses} <= set(names)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'xapi-sim'),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(folder: pathlib.Path, addresses: list[str]) -> None:
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name('xapi-sim CA')
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    host_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName('localhost')]
    names += [
        x509.IPAddress(ipaddress.ip_address(address)) for address in addresses
    ]
    host_cert = (
        x509.CertificateBuilder()
        .subject_name(_name('xapi-sim hosts'))
        .issuer_name(ca_name)
        .public_key(host_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / 'ca.pem').write_bytes(ca_cert.public_bytes(pem))
    (folder / 'host.pem').write_bytes(host_cert.public_bytes(pem))
    key_path = folder / 'host.key'
    key_path.write_bytes(
        host_key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
