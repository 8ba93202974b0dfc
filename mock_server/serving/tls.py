"""HTTPS and WSS without a user's own certificate: a local certificate authority, made on first use and kept per
user, signs a fresh server certificate at every start (as mkcert does, with `cryptography`).

The CA's key never leaves the user's CA directory (mode 0700; the key 0600), and is not in the repository: each
user's CA is their own. The server certificate covers the names a client may use to reach the emulator: loopback
by name and address, and the four Tradefence hosts, so that a client whose hosts resolve to the emulator (a hosts
file line, `curl --resolve`, a test's resolver) keeps its production URLs but for the port.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DIR_VARIABLE = "TRADEFENCE_CA_DIR"
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
HOST_NAMES = ("localhost", "auth.tradefence.com", "api.tradefence.com", "sandbox-api.tradefence.com",
              "stream.tradefence.com")
ADDRESSES = ("127.0.0.1", "::1")
_CA_YEARS = 10
_SERVER_DAYS = 90  # issued anew at every start; short, as browsers and Apple require of server certificates


def ca_dir(environ: os._Environ[str] | dict[str, str] = os.environ) -> Path:
    """`TRADEFENCE_CA_DIR`, else the user's data directory (XDG), as mkcert keeps its CA root."""
    if environ.get(CA_DIR_VARIABLE):
        return Path(environ[CA_DIR_VARIABLE]).expanduser()
    data = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "tradefence-sandbox" / "ca"


class LocalCA:
    """The user's CA in `directory`: loaded, or made there first (once, under a lock, whoever starts first)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cert_path = directory / CA_FILE
        self.created = False
        with _locked(directory):
            if not self.cert_path.exists():
                self._create()
                self.created = True
        key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / CA_KEY_FILE} is not the key this emulator made")
        self._key = key
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tradefence Sandbox"),
                          x509.NameAttribute(NameOID.COMMON_NAME,
                                             f"Tradefence Sandbox local CA ({_user()}@{socket.gethostname()})")])
        now = datetime.datetime.now(datetime.UTC)
        public = key.public_key()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=365 * _CA_YEARS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                .sign(key, hashes.SHA256()))
        _write(self.directory / CA_KEY_FILE, key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()), 0o600)
        _write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def server_context(self, extra_names: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A TLS server context with a new certificate for the usual names and `extra_names` (the bound host)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = []
        for name in dict.fromkeys((*HOST_NAMES, *ADDRESSES, *extra_names)):
            try:
                address = ipaddress.ip_address(name)
            except ValueError:
                names.append(x509.DNSName(name))
                continue
            if not address.is_unspecified:  # 0.0.0.0 binds every interface; no client connects to it by name
                names.append(x509.IPAddress(address))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tradefence Sandbox")]))
                .issuer_name(self._cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(min(now + datetime.timedelta(days=_SERVER_DAYS), self._cert.not_valid_after_utc))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                               critical=False)
                .sign(self._key, hashes.SHA256()))
        chain = cert.public_bytes(serialization.Encoding.PEM)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        with tempfile.TemporaryDirectory() as scratch:  # ssl loads a chain from files only; gone once loaded
            os.chmod(scratch, 0o700)
            cert_file, key_file = Path(scratch) / "server.pem", Path(scratch) / "server-key.pem"
            _write(key_file, private, 0o600)
            cert_file.write_bytes(chain)
            return server_context(cert_file, key_file)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context for a certificate chain and key in PEM files (the user's own, or one the CA issued)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # a client that offers HTTP/2 falls back to what we speak
    context.load_cert_chain(cert_file, key_file)
    return context


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, with `mode` from the start (a key is never readable by others, even for a moment)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Two emulators starting at once make one CA between them."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return str(os.getuid())
