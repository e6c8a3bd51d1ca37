"""A local SMTP sink for tests: just enough SMTP for smtplib, every message recorded, nothing delivered."""

from __future__ import annotations

import socketserver
from email import message_from_bytes, policy
from email.message import EmailMessage


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP for smtplib: every message's DATA is recorded, nothing is delivered."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: SmtpSink = self.server  # type: ignore[assignment]
        reply = lambda text: self.wfile.write(text.encode() + b"\r\n")  # noqa: E731
        reply("220 sink ready")
        rcpt: list[str] = []
        while line := self.rfile.readline():
            command = line.decode("utf-8", "replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                reply("250 sink")
            elif verb == "MAIL":
                rcpt = []
                reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(command.split(":", 1)[1].strip().strip("<>"))
                reply("250 OK")
            elif verb == "DATA":
                reply("354 end with <CRLF>.<CRLF>")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                server.messages.append(message_from_bytes(data, policy=policy.default))  # type: ignore[arg-type]
                server.recipients.append(rcpt)
                reply("250 OK queued")
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:  # RSET, NOOP, …
                reply("250 OK")
