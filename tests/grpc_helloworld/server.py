"""The helloworld Greeter on 127.0.0.1:PORT (run as a job: ``server.py PORT``)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grpclib.server import Server, Stream

from tests.grpc_helloworld.helloworld_grpc import GreeterBase
from tests.grpc_helloworld.helloworld_pb2 import HelloReply, HelloRequest


class Greeter(GreeterBase):
    async def SayHello(self, stream: Stream[HelloRequest, HelloReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        await stream.send_message(HelloReply(message=f"Hello, {request.name}!"))


async def main(port: int) -> None:
    server = Server([Greeter()])
    await server.start("127.0.0.1", port)
    print(f"serving on 127.0.0.1:{port}", flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
