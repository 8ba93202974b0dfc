"""The contract suite run as a user runs it: `pytest contracts --target=URL` in a process of its own, with the
credentials a CI secret would hold (a refresh token, the client id and secret) in its environment.

`login` gets those credentials the way a user does once by hand: the authorization-code flow with PKCE (which the
emulator approves at once), through the face, never through the control plane.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ("sandbox-client", "sandbox-secret")
REDIRECT_URI = "http://127.0.0.1:8976/callback"


@dataclass(frozen=True)
class Login:
    access_token: str
    refresh_token: str

    def environment(self, *, with_secret: bool = True) -> dict[str, str]:
        """What a CI job's secrets hold: the client, and a refresh token (the suite refreshes it itself)."""
        found = {"TRADEFENCE_CLIENT_ID": CLIENT[0], "TRADEFENCE_REFRESH_TOKEN": self.refresh_token}
        if with_secret:
            found["TRADEFENCE_CLIENT_SECRET"] = CLIENT[1]
        return found


def login(base_url: str, subject: str = "sandbox-user") -> Login:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    approved = requests.get(f"{base_url}/authorize", allow_redirects=False, timeout=10, params={
        "client_id": CLIENT[0], "redirect_uri": REDIRECT_URI, "response_type": "code", "state": "s",
        "scope": "trading:read trading:write", "code_challenge": challenge, "code_challenge_method": "S256",
        "login_hint": subject})
    assert approved.status_code == 302, approved.text
    code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
    token = requests.post(f"{base_url}/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
        "client_id": CLIENT[0], "client_secret": CLIENT[1]})
    assert token.status_code == 200, token.text
    return Login(token.json()["access_token"], token.json()["refresh_token"])


def contracts_command(target: str, *args: str, env: Mapping[str, str] | None = None,
                      paths: Sequence[str] = ("contracts",)) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a contract run (see `run_contracts`)."""
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith("TRADEFENCE_") and key != "GITHUB_STEP_SUMMARY"}
    environ.update(env or {})
    return ([sys.executable, "-m", "pytest", *paths, f"--target={target}", "-q", "-p", "no:cacheprovider",
             "--no-header", "-o", "addopts=", "-rs", *args], environ)


def run_contracts(target: str, *args: str, env: Mapping[str, str] | None = None, paths: Sequence[str] = ("contracts",),
                  timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m pytest PATHS --target=TARGET ARGS...` from the repository, without any TRADEFENCE_* variable (or
    GITHUB_STEP_SUMMARY) of this process leaking in; `env` adds the ones the run should see."""
    command, environ = contracts_command(target, *args, env=env, paths=paths)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=environ,
                          check=False)
