"""The jupyter-server extension: ``<base_url>/apolo/forward/<id>/...``.

Enabled on install by ``etc/jupyter/jupyter_server_config.d/apolo_jupyter.json``
(jupyter-server does not discover extensions through entry points). It proxies
only port forwards that a kernel registered in
:mod:`apolo_jupyter.kernel._forward_registry`; see :mod:`._proxy` for the handler.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from apolo_jupyter.kernel._forward_registry import ID_PATTERN

from ._proxy import ForwardProxyHandler

__all__ = ["ForwardProxyHandler"]

ROUTE = rf"/apolo/forward/({ID_PATTERN})(/.*)?"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "apolo_jupyter.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    base_url = web_app.settings.get("base_url", "/")
    web_app.add_handlers(".*$", [(url_path_join(base_url, ROUTE), ForwardProxyHandler)])
    serverapp.log.info("apolo_jupyter: proxying registered forwards at %s", ROUTE)
