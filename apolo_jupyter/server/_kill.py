"""``POST <base_url>/apolo/platforms/<id>/jobs/<job>/kill``: Kill from a view.

A view's Kill button posts here from the browser, so the click does not wait
in the kernel's queue behind a running cell. ``<id>`` names a platform that a
live kernel of this user registered (:mod:`apolo_jupyter.kernel._platform_registry`);
the job is killed through that platform, with the kernel's own credentials.

Authentication is Jupyter's, as for its own REST API: ``@web.authenticated``
(403 for an API, no login redirect), the XSRF check that tornado makes for a
POST (skipped only for token-header authentication), the origin check of
``APIHandler``, and authorization as writing to kernels: killing a kernel's job
needs the same right as running code in it. Errors are JSON with a message a
person can act on; nothing from the request is reflected unescaped.
"""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from yarl import URL

from apolo_jupyter.client import ClientError, ResourceNotFound
from apolo_jupyter.client._core import Core
from apolo_jupyter.kernel._platform_registry import lookup

__all__ = ["KillHandler"]

UNKNOWN = (
    "this Jupyter server does not know the kernel's platform (the kernel has "
    "exited, or runs elsewhere); kill the job from the kernel: %apolo_kill {job}"
)


class KillHandler(APIHandler):
    auth_resource = "kernels"

    @web.authenticated
    @authorized
    async def post(self, platform_id: str, job_id: str) -> None:
        platform = lookup(platform_id)
        if platform is None:
            return self._reply(404, UNKNOWN.format(job=job_id))
        core = Core(platform.token)
        try:
            async with core.request("DELETE", URL(platform.api_url) / "jobs" / job_id):
                pass
        except ResourceNotFound:
            message = f"the platform has no job {job_id} (list jobs with %apolo_ps -a)"
            return self._reply(404, message)
        except (ClientError, OSError) as exc:
            return self._reply(502, f"the platform refused the kill: {exc}")
        finally:
            await core.close()
        self.log.info("apolo_jupyter: killed %s through the kernel's platform", job_id)
        return self._reply(202, "kill requested", job_id=job_id)

    def _reply(self, status: int, message: str, **extra: str) -> None:
        # Not HTTPError: its message is a %-format string, and ours name magics.
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, **extra}))
