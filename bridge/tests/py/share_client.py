"""QEMU's own QMP client (qemu.qmp) on qmp-bridge's --share-socket.

Connects and negotiates, runs query-status, reports "ready", then waits for a STOP
event (which the test triggers from a browser session) and reports it.
"""
import asyncio
import json
import sys

from qemu.qmp import QMPClient


async def main(path: str) -> None:
    qmp = QMPClient("share-socket-test")
    await qmp.connect(path)
    status = await qmp.execute("query-status")
    version = qmp.greeting.QMP.version["qemu"]
    print(json.dumps({"status": status["status"], "major": version["major"]}), flush=True)
    async with asyncio.timeout(30):
        with qmp.listener(("STOP",)) as listener:
            print("ready", flush=True)
            event = await listener.get()
            print(json.dumps({"event": event["event"]}), flush=True)
    await qmp.disconnect()


asyncio.run(main(sys.argv[1]))
