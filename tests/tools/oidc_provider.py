#!/usr/bin/env python3
"""A tiny OpenID Connect provider for tests: the OAuth 2.0 client-credentials grant, RS256
access tokens (JWT) and the JWKS that verifies them. Python 3 standard library only; the RSA key
is made and used by the `openssl` command.

    oidc_provider.py [--listen 127.0.0.1:0] [--client ID] [--lifetime 3600]
                     [--issuer URL] [--audience kafka] [--dir DIR]

The client secret comes from the environment, OIDC_CLIENT_SECRET (never the command line), or is
made up and written to DIR/client_secret (mode 600). When it serves, one line goes to stdout:

    OIDC_URL=http://127.0.0.1:PORT

Endpoints (all JSON):
  POST /token   grant_type=client_credentials (form body), the client's id and secret either as
                HTTP Basic auth (what librdkafka's sasl.oauthbearer.method=oidc sends) or as form
                fields client_id / client_secret; optional scope, and audience (as some providers
                take it) for another aud claim than --audience. Answers
                {"access_token", "token_type": "Bearer", "expires_in", "scope"}; a wrong or missing
                secret gets 401 {"error": "invalid_client"}, another grant 400.
                The token: header {"alg": "RS256", "typ": "JWT", "kid"}, claims iss, aud, sub (the
                client id), iat, nbf, exp (iat + lifetime), scope, jti.
  GET  /jwks    {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid", "n", "e"}]}
  GET  /.well-known/openid-configuration   issuer, token_endpoint, jwks_uri
  GET  /_stats  {"issued", "refused", "jwks_fetches", "tokens": [{"iat", "exp", "sub", "scope",
                "auth": "basic" or "form"}]} -- for the tests; never shows a secret
Anything else is 404. Secrets and tokens are never logged (stderr has one line per request:
method, path, status).
"""
import argparse
import base64
import binascii
import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class Key:
    """An RSA key pair made by openssl; signs RS256 (RSASSA-PKCS1-v1_5 with SHA-256)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "signing-key.pem")
        old = os.umask(0o077)
        try:
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                            "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:65537",
                            "-out", self.path], check=True, capture_output=True)
        finally:
            os.umask(old)
        out = subprocess.run(["openssl", "rsa", "-in", self.path, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
        self.n = int(out.strip().split("=", 1)[1], 16)
        self.e = 65537
        self.kid = b64url(binascii.unhexlify("%x" % self.n)[-12:])  # stable for this key
        self.lock = threading.Lock()

    def sign(self, data):
        with self.lock:  # openssl is quick; one at a time keeps the process count low
            return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.path],
                                  input=data, check=True, capture_output=True).stdout

    def jwk(self):
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": b64url(int_bytes(self.n)), "e": b64url(int_bytes(self.e))}


class Provider:
    def __init__(self, key, client_id, client_secret, lifetime, issuer, audience):
        self.key = key
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime = lifetime
        self.issuer = issuer
        self.audience = audience
        self.lock = threading.Lock()
        self.issued = 0
        self.refused = 0
        self.jwks_fetches = 0
        self.tokens = []

    def token(self, sub, scope, audience=None):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key.kid}
        claims = {"iss": self.issuer, "aud": audience or self.audience, "sub": sub, "iat": now, "nbf": now,
                  "exp": now + self.lifetime, "jti": secrets.token_hex(8)}
        if scope:
            claims["scope"] = scope
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        return signing_input + "." + b64url(self.key.sign(signing_input.encode())), claims


def client_credentials(headers, form):
    """(client_id, client_secret, how) from Basic auth or the form; (None, None, None)."""
    auth = headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None, None
        if ":" not in raw:
            return None, None, None
        cid, secret = raw.split(":", 1)
        # RFC 6749 2.3.1 form-encodes both before Basic; librdkafka sends them as they are.
        return urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret), "basic"
    if "client_id" in form:
        return form["client_id"], form.get("client_secret", ""), "form"
    return None, None, None


class Handler(BaseHTTPRequestHandler):
    server_version = "dw-oidc-provider"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # no query strings, no bodies, no headers
        sys.stderr.write("oidc_provider: %s %s -> %s\n" % (self.command, self.path.split("?")[0],
                                                           getattr(self, "_status", "?")))

    def reply(self, status, body, extra=()):
        data = json.dumps(body).encode()
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        p = self.server.provider
        path = self.path.split("?")[0]
        if path == "/jwks":
            with p.lock:
                p.jwks_fetches += 1
            self.reply(200, {"keys": [p.key.jwk()]})
        elif path == "/.well-known/openid-configuration":
            base = "http://%s:%d" % self.server.server_address[:2]
            self.reply(200, {"issuer": p.issuer, "token_endpoint": base + "/token",
                             "jwks_uri": base + "/jwks",
                             "grant_types_supported": ["client_credentials"],
                             "token_endpoint_auth_methods_supported":
                                 ["client_secret_basic", "client_secret_post"],
                             "id_token_signing_alg_values_supported": ["RS256"]})
        elif path == "/_stats":
            with p.lock:
                self.reply(200, {"issued": p.issued, "refused": p.refused,
                                 "jwks_fetches": p.jwks_fetches, "tokens": list(p.tokens)})
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):
        p = self.server.provider
        length = int(self.headers.get("Content-Length") or 0)
        if length > 65536:
            self.reply(413, {"error": "invalid_request"})
            return
        body = self.rfile.read(length).decode(errors="replace")
        if self.path.split("?")[0] != "/token":
            self.reply(404, {"error": "not_found"})
            return
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        cid, secret, how = client_credentials(self.headers, form)
        if cid is None or cid != p.client_id or not hmac.compare_digest(
                secret.encode(), p.client_secret.encode()):
            with p.lock:
                p.refused += 1
            self.reply(401, {"error": "invalid_client",
                             "error_description": "client authentication failed"},
                       (("WWW-Authenticate", 'Basic realm="oidc_provider"'),))
            return
        if form.get("grant_type") != "client_credentials":
            self.reply(400, {"error": "unsupported_grant_type",
                             "error_description": "only client_credentials"})
            return
        scope = form.get("scope", "")
        token, claims = p.token(cid, scope, form.get("audience"))
        with p.lock:
            p.issued += 1
            p.tokens.append({"iat": claims["iat"], "exp": claims["exp"], "sub": cid,
                             "scope": scope, "auth": how})
        self.reply(200, {"access_token": token, "token_type": "Bearer",
                         "expires_in": p.lifetime, "scope": scope})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: a free one)")
    ap.add_argument("--client", default="delivery-worker", help="the one client id it knows")
    ap.add_argument("--lifetime", type=int, default=3600, help="token lifetime, seconds")
    ap.add_argument("--issuer", help="iss claim (default: this server's URL)")
    ap.add_argument("--audience", default="kafka", help="aud claim")
    ap.add_argument("--dir", help="where the key (and a made-up secret) go (default: a temp dir)")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    directory = a.dir or tempfile.mkdtemp(prefix="oidc-provider-")
    os.makedirs(directory, exist_ok=True)
    secret = os.environ.get("OIDC_CLIENT_SECRET", "")
    if not secret:
        secret = secrets.token_urlsafe(24)
        fd = os.open(os.path.join(directory, "client_secret"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    key = Key(directory)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    url = "http://%s:%d" % server.server_address[:2]
    server.provider = Provider(key, a.client, secret, a.lifetime, a.issuer or url, a.audience)
    print("OIDC_URL=" + url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
