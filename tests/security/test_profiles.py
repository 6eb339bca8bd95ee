"""Acceptance 1: a production profile with one unsafe setting does not start, and says which
setting in one line; the development profile does not bind a non-loopback address. Each case
runs the real command; the safe production settings start and answer (the control)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.config import PROJECT_ROOT
from tests.conftest import free_port
from tests.security.conftest import Service, production_env, serve_command, sign

# setting -> the unsafe value (None: left unset)
UNSAFE: dict[str, str | None] = {
    "ITB_CDS_AUTH_MODE": "off",
    "ITB_CDS_CORS_ORIGINS": "*",
    "ITB_CDS_SANDBOX_ENABLED": "true",
    "ITB_CDS_TRUST_SANDBOX": "true",
    "ITB_CDS_FHIR_SERVER_ALLOWLIST": None,
    "ITB_CDS_AUDIT_HMAC_KEY_FILE": None,
    "ITB_CDS_ADMIN_TOKEN": "short-admin-token",
    "ITB_CDS_JWKS_ALLOW_HTTP": "true",
    "ITB_CDS_PUBLIC_BASE_URL": "http://cds.example.org",
}


def refused_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_each_unsafe_production_setting_is_refused_in_one_line(
        tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey,
        serve: Callable[..., Service]) -> None:
    port = free_port()
    # All at once: each is a fresh interpreter that stops before binding anything.
    running = {
        setting: subprocess.Popen(serve_command(port), cwd=PROJECT_ROOT, text=True,
                                  env=production_env(tmp_path, signing_key, **{setting: value}),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for setting, value in UNSAFE.items()
    }
    for setting, process in running.items():
        out, err = process.communicate(timeout=120)
        lines = refused_lines(subprocess.CompletedProcess(process.args, process.returncode,
                                                          out, err))
        assert len(lines) == 1, (setting, lines)
        assert lines[0].startswith(f"cds_service.serve: refusing to start: {setting}: "), lines
        print(f"{setting}: {lines[0]}")

    # The control: the same settings without the unsafe one start and answer a client.
    service = serve(production_env(tmp_path, signing_key))
    assert httpx.get(service.url + "/cds-services",
                     headers=sign(signing_key, "/cds-services")).status_code == 200
    assert httpx.get(service.url + "/cds-services").status_code == 401


@pytest.mark.parametrize("module", ["cds_service.serve", "cds_service.cli serve"])
def test_the_development_profile_refuses_a_non_loopback_bind(
        tmp_path: Path, module: str) -> None:
    command = [sys.executable, "-m", *module.split(), "--host", "0.0.0.0",
               "--port", str(free_port())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITB_CDS_")}
    env["ITB_CDS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    lines = refused_lines(run(command, env))
    assert len(lines) == 1, lines
    assert ": refusing to start: ITB_CDS_HOST: " in lines[0]
    assert "0.0.0.0" in lines[0]
    assert not (tmp_path / "audit.sqlite").exists()  # refused before anything was opened


def test_an_invalid_setting_value_is_one_line_too(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ITB_CDS_PROFILE": "staging",
           "ITB_CDS_MAX_CONNECTIONS": "many"}
    lines = refused_lines(run(serve_command(free_port()), env))
    assert sorted(line.split(": ")[2] for line in lines) == [
        "ITB_CDS_MAX_CONNECTIONS", "ITB_CDS_PROFILE"]


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def test_production_with_tls_in_every_worker(
        tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey,
        serve: Callable[..., Service]) -> None:
    cert, key = self_signed(tmp_path)
    service = serve(production_env(tmp_path, signing_key, ITB_CDS_TLS_CERTFILE=str(cert),
                                   ITB_CDS_TLS_KEYFILE=str(key)), workers=2, tls=cert)
    with httpx.Client(base_url=service.url, verify=service.verify) as https:
        assert https.get("/cds-services",
                         headers=sign(signing_key, "/cds-services")).status_code == 200
        big = https.get("/cds-services", headers={"x-big": "a" * 20_000})
        assert big.status_code == 431  # the limits hold behind TLS too
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{service.port}/health")
