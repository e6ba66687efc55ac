"""An OAuth 1.0a provider for the Rust API tests (crates/nango-server/tests/api/oauth1.rs).

It is deliberately not our code: request parsing, signature checks (HMAC-SHA1, HMAC-SHA256,
RSA-SHA1, PLAINTEXT), nonce/timestamp rules, token and verifier handling are oauthlib's server
endpoints (RFC 5849). What is ours is the in-memory RequestValidator, the HTTP plumbing and the
authorize step, which approves at once (no login page) unless told to deny.

Run:  python provider.py
Prints {"port": N} on one line once it listens on 127.0.0.1:N, and exits when stdin closes.

Routes (every token endpoint accepts GET, POST and PUT):
  /request_token      oauthlib RequestTokenEndpoint
  /slow_request_token answers after 5 s (for client timeouts)
  /authorize          approves: 302 to the stored callback + oauth_token + oauth_verifier;
                      with decision=deny: 302 to the callback + denied=<token> (Twitter's way)
  /access_token       oauthlib AccessTokenEndpoint; the answer carries user_id and screen_name
  /api/...            any method: a protected resource (oauthlib ResourceEndpoint) that checks
                      the signature of a call made with an access token (the proxy's calls);
                      answers 200 with what it verified, or 401
  /_log               GET: JSON list of what each endpoint received (for assertions)

Clients (consumer key -> secret):
  test-client-id  -> test-client-secret, and for RSA-SHA1 the public half of
                     test_rsa_private_key.pem (a throwaway key made for these tests)
"""

import json
import os
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import serialization
from oauthlib.common import CaseInsensitiveDict, add_params_to_uri, safe_string_equals
from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)
from oauthlib.oauth1.rfc5849 import errors, utils

HERE = os.path.dirname(os.path.abspath(__file__))


def rsa_public_key_pem():
    with open(os.path.join(HERE, "test_rsa_private_key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.clients = {"test-client-id": "test-client-secret"}
        self.rsa_keys = {"test-client-id": rsa_public_key_pem()}
        # request token -> {client, secret, callback, verifier}
        self.request_tokens = {}
        # access token -> {client, secret}
        self.access_tokens = {}
        self.nonces = set()
        self.log = []


STORE = Store()
DUMMY_SECRET = "dummy-secret-for-unknown-clients"


class Validator(RequestValidator):
    """Holds clients and tokens in memory. Formats are relaxed where our test ids differ from
    oauthlib's defaults (client keys with '-'); nonce and token formats keep oauthlib's rules."""

    enforce_ssl = False  # the tests run over http on 127.0.0.1

    @property
    def client_key_length(self):
        return 3, 64

    def check_client_key(self, client_key):
        lower, upper = self.client_key_length
        allowed = set(utils.UNICODE_ASCII_CHARACTER_SET) | {"-", "_"}
        return set(client_key) <= allowed and lower <= len(client_key) <= upper

    @property
    def dummy_client(self):
        return "dummy-client"

    @property
    def dummy_request_token(self):
        return "dummyrequesttoken0000000000000"

    @property
    def dummy_access_token(self):
        return "dummyaccesstoken00000000000000"

    def get_client_secret(self, client_key, request):
        return STORE.clients.get(client_key, DUMMY_SECRET)

    def get_rsa_key(self, client_key, request):
        return STORE.rsa_keys.get(client_key, STORE.rsa_keys["test-client-id"])

    def validate_client_key(self, client_key, request):
        return client_key in STORE.clients

    def get_default_realms(self, client_key, request):
        return []

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def get_realms(self, token, request):
        return []

    def verify_realms(self, token, realms, request):
        return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        return redirect_uri.startswith(("http://", "https://"))

    def validate_timestamp_and_nonce(
        self, client_key, timestamp, nonce, request, request_token=None, access_token=None
    ):
        key = (client_key, timestamp, nonce, request_token or access_token)
        with STORE.lock:
            if key in STORE.nonces:
                return False
            STORE.nonces.add(key)
        return True

    def save_request_token(self, token, request):
        with STORE.lock:
            STORE.request_tokens[token["oauth_token"]] = {
                "client": request.client_key,
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "verifier": None,
            }

    def verify_request_token(self, token, request):
        return token in STORE.request_tokens

    def get_redirect_uri(self, token, request):
        return STORE.request_tokens[token]["callback"]

    def save_verifier(self, token, verifier, request):
        with STORE.lock:
            STORE.request_tokens[token]["verifier"] = verifier["oauth_verifier"]

    def validate_request_token(self, client_key, token, request):
        entry = STORE.request_tokens.get(token)
        return entry is not None and entry["client"] == client_key

    def get_request_token_secret(self, client_key, token, request):
        entry = STORE.request_tokens.get(token)
        return entry["secret"] if entry else "dummy-request-token-secret"

    def validate_verifier(self, client_key, token, verifier, request):
        entry = STORE.request_tokens.get(token)
        return (
            entry is not None
            and entry["client"] == client_key
            and entry["verifier"] is not None
            and safe_string_equals(entry["verifier"], verifier)
        )

    def invalidate_request_token(self, client_key, request_token, request):
        with STORE.lock:
            STORE.request_tokens.pop(request_token, None)

    def validate_access_token(self, client_key, token, request):
        with STORE.lock:
            entry = STORE.access_tokens.get(token)
        return entry is not None and entry["client"] == client_key

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def get_access_token_secret(self, client_key, token, request):
        with STORE.lock:
            entry = STORE.access_tokens.get(token)
        return entry["secret"] if entry else "dummy-access-token-secret"

    def save_access_token(self, token, request):
        with STORE.lock:
            STORE.access_tokens[token["oauth_token"]] = {
                "client": request.client_key,
                "secret": token["oauth_token_secret"],
            }


class ReportingRequestTokenEndpoint(RequestTokenEndpoint):
    """oauthlib answers a refused request-token call with a bare 401; real providers say why
    (the OAuth Problem Reporting extension). Which check failed is oauthlib's verdict."""

    def validate_request_token_request(self, request):
        valid, processed = super().validate_request_token_request(request)
        self.last_log = dict(processed.validator_log)
        return valid, processed


class ReportingAccessTokenEndpoint(AccessTokenEndpoint):
    def validate_access_token_request(self, request):
        valid, processed = super().validate_access_token_request(request)
        self.last_log = dict(processed.validator_log)
        return valid, processed


def problem_body(validator_log):
    if validator_log.get("client") is False:
        return "oauth_problem=consumer_key_unknown"
    if validator_log.get("resource_owner") is False:
        return "oauth_problem=token_rejected"
    if validator_log.get("verifier") is False:
        return "oauth_problem=verifier_invalid"
    if validator_log.get("signature") is False:
        return "oauth_problem=signature_invalid"
    return "oauth_problem=nonce_used"


VALIDATOR = Validator()
REQUEST_TOKEN = ReportingRequestTokenEndpoint(VALIDATOR)
AUTHORIZATION = AuthorizationEndpoint(VALIDATOR)
ACCESS_TOKEN = ReportingAccessTokenEndpoint(VALIDATOR)
RESOURCE = ResourceEndpoint(VALIDATOR)
ENDPOINT_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        uri = "http://%s%s" % (self.headers.get("Host"), self.path)
        path = urlsplit(self.path).path
        headers = CaseInsensitiveDict(dict(self.headers.items()))
        try:
            if path == "/request_token":
                self.token_endpoint("request_token", REQUEST_TOKEN.create_request_token_response,
                                    REQUEST_TOKEN, method, uri, body, headers)
            elif path == "/slow_request_token":
                time.sleep(5)
                self.reply(503, "text/plain", "too slow")
            elif path == "/access_token":
                self.token_endpoint("access_token", ACCESS_TOKEN.create_access_token_response,
                                    ACCESS_TOKEN, method, uri, body, headers,
                                    credentials={"user_id": "42", "screen_name": "ada"})
            elif path.startswith("/api/"):
                self.resource(method, uri, body, headers)
            elif path == "/authorize" and method == "GET":
                self.authorize(uri)
            elif path == "/_log" and method == "GET":
                with STORE.lock:
                    self.reply(200, "application/json", json.dumps(STORE.log))
            else:
                self.reply(404, "text/plain", "not found")
        except errors.OAuth1Error as e:
            self.reply(e.status_code, "application/x-www-form-urlencoded", e.urlencoded)
        except Exception:  # a bug here must fail the test loudly, not look like a network error
            traceback.print_exc()
            self.reply(500, "text/plain", "provider.py crashed; see the test's stderr")

    def record(self, entry):
        with STORE.lock:
            STORE.log.append(entry)

    def token_endpoint(self, name, create, endpoint, method, uri, body, headers, credentials=None):
        auth = headers.get("Authorization", "")
        oauth = {}
        if auth.startswith("OAuth "):
            oauth = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(auth)}
        content_type = headers.get("Content-Type", "")
        form = parse_qsl(body, keep_blank_values=True) if "x-www-form-urlencoded" in content_type else []
        query = parse_qsl(urlsplit(uri).query, keep_blank_values=True)
        with ENDPOINT_LOCK:
            endpoint.last_log = {}
            kwargs = {"credentials": credentials} if credentials else {}
            resp_headers, resp_body, status = create(uri, http_method=method, body=body,
                                                     headers=headers, **kwargs)
            validator_log = endpoint.last_log
        if status == 401 and not resp_body:
            resp_body = problem_body(validator_log)
            resp_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        entry = {
            "endpoint": name,
            "method": method,
            "status": status,
            "oauth": {k: v for k, v in oauth.items() if k != "oauth_signature"},
            "body": form,
            "query": query,
            "user_agent": headers.get("User-Agent", ""),
        }
        if status == 200:
            entry["response"] = dict(parse_qsl(resp_body, keep_blank_values=True))
        self.record(entry)
        self.reply(status, resp_headers.get("Content-Type", "text/plain"), resp_body or "")

    def resource(self, method, uri, body, headers):
        with ENDPOINT_LOCK:
            valid, request = RESOURCE.validate_protected_resource_request(
                uri, http_method=method, body=body, headers=headers)
            log = dict(request.validator_log)
        content_type = headers.get("Content-Type", "")
        form = parse_qsl(body, keep_blank_values=True) if "x-www-form-urlencoded" in content_type else []
        entry = {
            "endpoint": "api",
            "method": method,
            "path": urlsplit(uri).path,
            "query": parse_qsl(urlsplit(uri).query, keep_blank_values=True),
            "form": form,
            "body": body,
            "valid": valid,
            "checks": log,
            "token": request.resource_owner_key,
        }
        self.record(entry)
        self.reply(200 if valid else 401, "application/json", json.dumps(entry))

    def authorize(self, uri):
        query = dict(parse_qsl(urlsplit(uri).query, keep_blank_values=True))
        self.record({"endpoint": "authorize", "method": "GET", "query": query})
        token = query.get("oauth_token", "")
        if query.get("decision") == "deny":
            if not VALIDATOR.verify_request_token(token, None):
                raise errors.InvalidClientError()
            callback = VALIDATOR.get_redirect_uri(token, None)
            location = add_params_to_uri(callback, [("denied", token)])
        else:
            realms, credentials = AUTHORIZATION.get_realms_and_credentials(uri)
            headers, _, status = AUTHORIZATION.create_authorization_response(
                uri, realms=realms, credentials={})
            location = headers["Location"]
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply(self, status, content_type, text):
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    # The test holds our stdin open; when it drops it (or dies), we go.
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
