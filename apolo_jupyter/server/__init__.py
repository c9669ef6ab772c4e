"""The jupyter-server extension: the UI's routes that must not wait for a kernel.

- ``<base_url>/apolo/forward/<id>/...`` proxies port forwards that a kernel
  registered in :mod:`apolo_jupyter.kernel._forward_registry` (:mod:`._proxy`);
- ``POST <base_url>/apolo/platforms/<id>/jobs/<job>/kill`` kills a job through
  a platform a kernel registered in :mod:`apolo_jupyter.kernel._platform_registry`
  (:mod:`._kill`): the views' Kill buttons, which must work while a cell runs;
- a notebook opened after its kernel has gone shows our views' saved fallbacks,
  not "Error displaying widget: model not found" (:mod:`._reopen`).

Enabled on install by ``etc/jupyter/jupyter_server_config.d/apolo_jupyter.json``
(jupyter-server does not discover extensions through entry points).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from apolo_jupyter.kernel._forward_registry import ID_PATTERN
from apolo_jupyter.kernel._platform_registry import JOB_ID_PATTERN

from ._kill import KillHandler
from ._proxy import ForwardProxyHandler
from ._reopen import install as install_reopen

__all__ = ["ForwardProxyHandler", "KillHandler"]

ROUTE = rf"/apolo/forward/({ID_PATTERN})(/.*)?"
KILL_ROUTE = rf"/apolo/platforms/({ID_PATTERN})/jobs/({JOB_ID_PATTERN})/kill"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "apolo_jupyter.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    base_url = web_app.settings.get("base_url", "/")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, ROUTE), ForwardProxyHandler),
            (url_path_join(base_url, KILL_ROUTE), KillHandler),
        ],
    )
    serverapp.log.info("apolo_jupyter: proxying registered forwards at %s", ROUTE)
    serverapp.log.info(
        "apolo_jupyter: killing jobs of registered kernels at %s", KILL_ROUTE
    )
    install_reopen(serverapp.contents_manager)
    serverapp.log.info(
        "apolo_jupyter: notebooks open with gone kernels' views as saved text"
    )
