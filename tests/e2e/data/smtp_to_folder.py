"""A real SMTP server (aiosmtpd) on 127.0.0.1 that writes every message it accepts to a folder,
as received (`N.eml`, written under a temporary name and renamed when complete).

usage: smtp_to_folder.py FOLDER
Prints the port it listens on, then serves until stdin closes or it is killed.
"""
import os
import socket
import sys

from aiosmtpd.controller import Controller

folder = sys.argv[1]


class Handler:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        path = os.path.join(folder, f"{Handler.count}.eml")
        with open(path + ".tmp", "wb") as file:
            file.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK queued"


probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
sys.stdin.read()
controller.stop()
