"""``apolo-jupyter secret add|ls|rm`` and ``apolo-jupyter disk create|ls|get|rm``,
as ``apolo secret`` and ``apolo disk`` do them (values never printed by ls)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..client import Client, ClientError, ResourceNotFound, get

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKMGTPEZY]?)(b|B)?")


def parse_size(text: str) -> int:
    """``10G`` is 10 * 2**30 bytes, ``10GB`` 10 * 10**9, as ``apolo disk create``."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size: write e.g. 500M, 10G or 10GB")
    number, unit, decimal = match.groups()
    power = " kMGTPEZY".index(unit.replace("K", "k")) if unit else 0
    return int(float(number) * (1000 if decimal else 1024) ** power)


def _value(text: str) -> bytes:
    """VALUE, or the bytes of a file with @PATH (as ``apolo secret add``)."""
    return (
        Path(text[1:]).expanduser().read_bytes()
        if text.startswith("@")
        else text.encode()
    )


def _run(work: Callable[[Client], Awaitable[None]], local: bool) -> int:
    async def main() -> None:
        async with get(local=local, quiet=True) as client:
            await work(client)

    try:
        asyncio.run(main())
    except (ValueError, ClientError, OSError, ResourceNotFound) as exc:
        print(f"apolo-jupyter: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_secret_add(args: argparse.Namespace) -> int:
    async def work(client: Client) -> None:
        await client.secrets.add(args.key, _value(args.value))

    return _run(work, args.local)


def cmd_secret_ls(args: argparse.Namespace) -> int:
    async def work(client: Client) -> None:
        project = client.config.project_name
        async with client.secrets.list(project_name=project) as secrets:
            rows = [(s.key, str(s.uri)) async for s in secrets]
        print("\n".join(["KEY  URI", *(f"{k}  {u}" for k, u in rows)]))

    return _run(work, args.local)


def cmd_secret_rm(args: argparse.Namespace) -> int:
    async def work(client: Client) -> None:
        await client.secrets.rm(args.key)

    return _run(work, args.local)


def cmd_disk_create(args: argparse.Namespace) -> int:
    async def work(client: Client) -> None:
        unused = timedelta(seconds=0)
        if args.timeout_unused:
            from ..kernel._options import parse_duration

            unused = timedelta(seconds=parse_duration(args.timeout_unused, "", 0))
        disk = await client.disks.create(
            parse_size(args.storage), timeout_unused=unused or None, name=args.name
        )
        print(f"{disk.id}  {disk.name or ''}  {disk.uri}")

    return _run(work, args.local)


def cmd_disk_ls(args: argparse.Namespace) -> int:
    async def work(client: Client) -> None:
        async with client.disks.list(project_name=client.config.project_name) as it:
            disks = [d async for d in it]
        print("ID  NAME  STORAGE  USED  URI")
        for d in disks:
            print(f"{d.id}  {d.name or ''}  {d.storage}  {d.used_bytes or 0}  {d.uri}")

    return _run(work, args.local)


def cmd_disk_get(args: argparse.Namespace) -> int:
    async def work(client: Client) -> None:
        d = await client.disks.get(args.disk)
        print(f"{d.id}  {d.name or ''}  {d.storage}  {d.used_bytes or 0}  {d.uri}")

    return _run(work, args.local)


def cmd_disk_rm(args: argparse.Namespace) -> int:
    async def work(client: Client) -> None:
        for disk in args.disks:
            await client.disks.rm(disk)

    return _run(work, args.local)


def _group(sub: Any, name: str, text: str) -> Any:
    group = sub.add_parser(name, help=text, description=f"{text}.")
    return group.add_subparsers(dest="action", required=True)


def _command(sub: Any, name: str, func: Any, text: str, *args: str) -> Any:
    parser = sub.add_parser(name, help=text, description=f"{text}.")
    for arg in args:
        parser.add_argument(arg)
    parser.add_argument(
        "--local", action="store_true", help="use the embedded local platform"
    )
    parser.set_defaults(func=func)
    return parser


def register(sub: Any) -> None:
    secret = _group(sub, "secret", "Operations with secrets")
    _command(secret, "add", cmd_secret_add, "Add secret KEY with data VALUE "
             "(@PATH: the content of a file)", "key", "value")  # fmt: skip
    _command(secret, "ls", cmd_secret_ls, "List secrets (their keys, never values)")
    _command(secret, "rm", cmd_secret_rm, "Remove secret KEY", "key")
    disk = _group(sub, "disk", "Operations with disks")
    create = _command(disk, "create", cmd_disk_create, "Create a disk of at least "
                      "STORAGE (e.g. 10G)", "storage")  # fmt: skip
    create.add_argument("--name", help="disk name")
    create.add_argument(
        "--timeout-unused", metavar="TIMEDELTA", help="remove it after this long unused"
    )
    _command(disk, "ls", cmd_disk_ls, "List disks")
    _command(disk, "get", cmd_disk_get, "Show disk DISK (id or name)", "disk")
    rm = _command(disk, "rm", cmd_disk_rm, "Remove disks")
    rm.add_argument("disks", nargs="+", metavar="DISK", help="disk ids or names")
