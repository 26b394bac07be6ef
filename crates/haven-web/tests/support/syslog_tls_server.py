"""A syslog receiver over TLS (RFC 5425) for Haven's export tests.

Creates a throwaway CA and a certificate for 127.0.0.1 signed by it. Prints
one JSON line with its port and the CA's path, then, for each connection,
one JSON line: {"received": TEXT} with everything the client sent before
it closed, or {"handshake_error": TEXT} when the handshake failed (a client
that does not trust the certificate). Exits when stdin closes.
"""
import json
import socket
import ssl
import sys
import threading

from certs import certificate


def serve(listener, context):
    while True:
        connection, _ = listener.accept()
        try:
            tls = context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print(json.dumps({"handshake_error": str(e)}), flush=True)
            connection.close()
            continue
        received = b""
        try:
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ssl.SSLError, OSError) as e:
            print(json.dumps({"read_error": str(e)}), flush=True)
        tls.close()
        print(json.dumps({"received": received.decode("utf-8")}), flush=True)


def main():
    ca_path, chain_path, key_path = certificate(sys.argv[1], "syslog")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain_path, key_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    threading.Thread(target=serve, args=(listener, context), daemon=True).start()
    print(json.dumps({"port": listener.getsockname()[1], "certificate": ca_path}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
