"""The embedded local platform: the Apolo protocol on 127.0.0.1, jobs as sandboxed
local processes. Run it with ``apolo-jupyter local start`` (the client starts it on
demand)."""
