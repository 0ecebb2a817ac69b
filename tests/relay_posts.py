"""Webhook posts as the relays make them, signed by keys made in the tests, and the SNS certificate server.

``CertificateServer`` is a real HTTPS server on 127.0.0.1 (its certificate from a
``LoopbackCA``) that serves SNS-style signing certificates and records every
GET, so a test sees the verifier fetch a certificate or visit a SubscribeURL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.loopback_ca import LoopbackCA

TOPIC = "arn:aws:sns:eu-west-2:123456789012:clinic-bounces"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class SigningIdentity:
    """An RSA key and a certificate for it, as SNS publishes one."""

    key: rsa.RSAPrivateKey
    pem: bytes

    @classmethod
    def create(cls, name: str = "sns.eu-west-2.amazonaws.com") -> "SigningIdentity":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now_utc() - dt.timedelta(hours=1)).not_valid_after(now_utc() + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert.public_bytes(serialization.Encoding.PEM))


class CertificateServer:
    """HTTPS on 127.0.0.1 serving ``files`` (path → bytes): 404 for another .pem, 200 for any other GET."""

    def __init__(self, folder: Path):
        self.ca = LoopbackCA.create("Certificate server test CA")
        self.ca_file = self.ca.write(folder / "cert-server-ca.pem")
        cert, key = self.ca.issue(folder, "cert-server")
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                path = self.path.split("?")[0]
                body = server.files.get(path, b"<ConfirmSubscriptionResponse/>")
                self.send_response(404 if path.endswith(".pem") and path not in server.files else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def publish(self, identity: SigningIdentity, name: str = "SimpleNotificationService-test.pem") -> str:
        self.files["/" + name] = identity.pem
        return self.base + name

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def sign_sns(doc: dict, key: rsa.RSAPrivateKey, version: str = "1") -> dict:
    """Fill in SignatureVersion and Signature the way SNS computes them."""
    fields = {
        "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    }.get(doc["Type"], ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"))
    text = "".join(f"{name}\n{doc[name]}\n" for name in fields if name in doc)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), algorithm)
    return {**doc, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode("ascii")}


def ses_bounce(recipients: list[tuple[str, str, str]], bounce_type: str = "Permanent",
               subtype: str = "General") -> dict:
    """SES's bounce notification: recipients as (address, status, diagnostic code)."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type, "bounceSubType": subtype, "feedbackId": f"fb-{uuid.uuid4()}",
            "timestamp": iso(now_utc()),
            "bouncedRecipients": [
                {"emailAddress": a, "action": "failed", "status": s, "diagnosticCode": d} for a, s, d in recipients
            ],
        },
        "mail": {"messageId": "0102018c-ses-id", "commonHeaders": {"messageId": "<issue-7.abc@clinic.example>"}},
    }


def ses_complaint(address: str) -> dict:
    return {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": address}], "feedbackId": f"fb-{uuid.uuid4()}",
                      "timestamp": iso(now_utc()), "complaintFeedbackType": "abuse"},
        "mail": {"messageId": "0102018c-ses-id-2", "commonHeaders": {"messageId": "<issue-7.def@clinic.example>"}},
    }


def sns_post(message: dict | str, cert_url: str, key: rsa.RSAPrivateKey, *, version: str = "1",
             kind: str = "Notification", timestamp: dt.datetime | None = None, **extra) -> dict:
    doc = {
        "Type": kind, "MessageId": str(uuid.uuid4()), "TopicArn": TOPIC,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": iso(timestamp or now_utc()), "SigningCertURL": cert_url, **extra,
    }
    if kind == "Notification":
        doc["Subject"] = "Amazon SES Email Event Notification"
    return sign_sns(doc, key, version)


def body(doc) -> bytes:
    return json.dumps(doc).encode("utf-8")


@dataclass
class Mailgun:
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def post(self, event_data: dict, *, timestamp: int | None = None, token: str | None = None,
             key: str | None = None) -> bytes:
        timestamp = str(int(now_utc().timestamp()) if timestamp is None else timestamp)
        token = token or uuid.uuid4().hex + uuid.uuid4().hex[:18]
        signature = hmac.new((key or self.key).encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
        return body({"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                     "event-data": event_data})


def mailgun_failed(address: str, severity: str = "permanent", reason: str = "bounce", code: int = 550,
                   message: str = "5.1.1 The email account that you tried to reach does not exist") -> dict:
    return {
        "event": "failed", "id": uuid.uuid4().hex, "timestamp": now_utc().timestamp(), "severity": severity,
        "reason": reason, "recipient": address,
        "delivery-status": {"code": code, "message": message, "description": ""},
        "message": {"headers": {"message-id": "issue-7.xyz@clinic.example"}},
    }


@dataclass
class SendGrid:
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key_text(self) -> str:
        """The verification key as SendGrid's console shows it: base64 of the DER public key."""
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    def headers(self, payload: bytes, timestamp: int | None = None) -> dict[str, str]:
        timestamp = str(int(now_utc().timestamp()) if timestamp is None else timestamp)
        signature = self.key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode("ascii"),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def sendgrid_event(event: str, address: str, **fields) -> dict:
    return {"email": address, "timestamp": int(now_utc().timestamp()), "event": event,
            "sg_event_id": uuid.uuid4().hex, "sg_message_id": "sg-msg-1.filter", **fields}


def postmark_bounce(address: str, kind: str = "HardBounce", record: str = "Bounce", **fields) -> bytes:
    return body({"RecordType": record, "ID": int(uuid.uuid4().int % 10**10), "Type": kind, "TypeCode": 1,
                 "MessageID": str(uuid.uuid4()), "Email": address, "BouncedAt": "2026-12-04T06:09:19.6421112-05:00",
                 "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist", **fields})


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")}
