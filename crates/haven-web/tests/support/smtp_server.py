"""A real SMTP server for Haven's mail tests (aiosmtpd on loopback).

Requires STARTTLS and authentication (login `haven`, password `s3cret`).
Creates a throwaway CA and a certificate for 127.0.0.1 signed by it. Prints one
JSON line with its port and certificate, then one JSON line per received
mail, parsed with Python's email package. Exits when stdin closes.
"""
import json
import socket
import ssl
import sys
from email import message_from_bytes
from email.policy import default

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from certs import certificate


class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=default)
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "subject": str(message["subject"]),
                    "body": message.get_content(),
                    "tls": session.ssl is not None,
                    "authenticated": bool(session.authenticated),
                }
            ),
            flush=True,
        )
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"haven"
        and auth_data.password == b"s3cret"
    )
    # handled=False: aiosmtpd then answers 535 itself (True means "already answered").
    return AuthResult(success=ok, handled=False)


def main():
    ca_path, chain_path, key_path = certificate(sys.argv[1], "smtp")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain_path, key_path)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    print(json.dumps({"port": port, "certificate": ca_path}), flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
