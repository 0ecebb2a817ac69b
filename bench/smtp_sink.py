"""A minimal SMTP sink: reads every message and throws it away, as fast as it can.

    python bench/smtp_sink.py [--port 0] [--delay 0.05]

Prints ``PORT <n>`` once listening; on SIGTERM or Ctrl-C prints ``RECEIVED <n>``
and exits. One thread per connection, blocking sockets, no parsing beyond what
SMTP needs: aiosmtpd tops out near 550-770 messages/s on this machine and would
measure itself instead of the sender. Like every real MTA it offers PIPELINING.
It is a benchmark target, not a server: it accepts anything from anyone.
``--delay S`` holds each end-of-data reply S seconds (that connection only): a
relay that takes its time per message, as real ones do.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time

received = 0
delay = 0.0
lock = threading.Lock()

EHLO = b"250-sink.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n"


def serve(conn: socket.socket) -> None:
    global received
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    out = bytearray(b"220 sink.example.org ESMTP\r\n")
    in_data = False
    count = 0
    try:
        while True:
            if out and not _pending_line(buf, in_data):
                conn.sendall(out)
                out.clear()
            chunk = conn.recv(262144)
            if not chunk:
                return
            buf += chunk
            while True:
                if in_data:
                    end = buf.find(b"\r\n.\r\n")
                    if end < 0:
                        # keep the last 4 bytes: the terminator may straddle two reads
                        if len(buf) > 4:
                            del buf[: len(buf) - 4]
                        break
                    del buf[: end + 5]
                    in_data = False
                    count += 1
                    if delay:
                        time.sleep(delay)
                    out += b"250 2.0.0 ok\r\n"
                    continue
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line = bytes(buf[:nl]).strip().upper()
                del buf[: nl + 1]
                verb = line[:4]
                if verb == b"EHLO":
                    out += EHLO
                elif verb == b"DATA":
                    out += b"354 go ahead\r\n"
                    in_data = True
                    buf[:0] = b"\r\n"  # so a message whose first line is "." still ends on "\r\n.\r\n"
                elif verb == b"QUIT":
                    out += b"221 bye\r\n"
                    conn.sendall(out)
                    return
                else:  # HELO, MAIL, RCPT, RSET, NOOP
                    out += b"250 ok\r\n"
    except OSError:
        pass
    finally:
        with lock:
            received += count
        conn.close()


def _pending_line(buf: bytearray, in_data: bool) -> bool:
    """More complete commands already buffered (pipelining): answer them all in one write."""
    return not in_data and b"\n" in buf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each end-of-data reply")
    args = parser.parse_args()
    global delay
    delay = args.delay
    server = socket.create_server(("127.0.0.1", args.port), backlog=128)
    print(f"PORT {server.getsockname()[1]}", flush=True)

    def stop(*_):
        with lock:
            print(f"RECEIVED {received}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
