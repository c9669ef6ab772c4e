"""``%apolo_exec``: run a command inside a running job, its output in the cell."""

from __future__ import annotations

import codecs
import sys

from IPython.core.error import UsageError

from ..client import Client, IllegalArgumentError, ResourceNotFound, StdStreamError
from ._run import connect, running_job


async def _exec(client: Client, job_id: str, command: str) -> int | None:
    decoders = {n: codecs.getincrementaldecoder("utf-8")("replace") for n in (1, 2)}
    async with client.jobs.exec(job_id, command, stdout=True, stderr=True) as stream:
        try:
            while (msg := await stream.read_out()) is not None:
                out = sys.stderr if msg.fileno == 2 else sys.stdout
                out.write(decoders.get(msg.fileno, decoders[1]).decode(msg.data))
                out.flush()
        except StdStreamError as exc:
            return exc.exit_code
    return None


def exec_in_job(job_id: str, command: str) -> int:
    """Run ``command`` in the job; print its output; return its exit code."""
    if not command.strip():
        raise UsageError(
            "%apolo_exec needs a command after --, e.g. %apolo_exec JOB -- ls -l /tmp"
        )
    rt, client = connect()
    job = running_job(rt, client, job_id, "%apolo_exec")
    try:
        code = rt.run(_exec(client, job.id, command))
    except (ResourceNotFound, IllegalArgumentError) as exc:
        running_job(rt, client, job_id, "%apolo_exec")  # it ended meanwhile?
        raise UsageError(f"%apolo_exec {job_id}: {exc}") from None
    except KeyboardInterrupt:
        print(f"\n(interrupted: the command was stopped in {job_id}; the job goes on)")
        return 130
    if code is None:
        raise UsageError(
            f"the platform closed the exec stream of {job_id} without an exit code; "
            "check the job with %apolo_status " + job_id
        )
    return code
