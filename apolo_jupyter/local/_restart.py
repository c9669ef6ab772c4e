"""Restart policy and schedule timeout: the rules, apart from the processes.

As on the real platform, which gives the job's pod the Kubernetes ``restartPolicy``:

- ``never`` (the default): the job ends when its command exits;
- ``on-failure``: a command that exits non-zero runs again, in place (same job, same
  room, same volumes); exit code 0 ends the job ``succeeded``;
- ``always``: the command runs again whatever its exit code.

Restarts go on until the job is killed (or its life span ends), as they do under
Kubernetes. Between them the job stays ``running`` with reason ``Restarting`` (the
reason the real platform gives a running pod whose container is down), and each
one counts in ``history.restarts``. Like the kubelet, the platform restarts the
first time at once, then waits ``first`` seconds, doubling up to ``cap``; a run that
lasted ``2 * cap`` seconds (10 minutes by default; never under 10 s) resets the
back-off.

A job whose ``schedule_timeout`` passes before it could start fails with the
real platform's reason for it, ``ClusterScaleUpFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass

RESTARTING = "Restarting"
RESET_FLOOR = 10.0
SCHEDULE_TIMEOUT = "ClusterScaleUpFailed"


def restarts_after(policy: str, exit_code: int) -> bool:
    """Whether a command that exited with ``exit_code`` runs again."""
    return policy == "always" or (policy == "on-failure" and exit_code != 0)


@dataclass(frozen=True)
class Backoff:
    first: float = 10.0  # seconds before the second restart
    cap: float = 300.0  # the longest wait

    @property
    def reset_after(self) -> float:
        """A run at least this long forgets the earlier failures: twice the cap,
        and never under RESET_FLOOR seconds, so that a tiny cap in config.json
        cannot turn a crash loop into restarts without a pause."""
        return max(2 * self.cap, RESET_FLOOR)

    def delay(self, in_a_row: int) -> float:
        """The wait before restart number ``in_a_row`` of an unbroken series
        (1: at once, 2: ``first``, then doubling up to ``cap``)."""
        if in_a_row <= 1:
            return 0.0
        return min(self.cap, self.first * 2.0 ** min(in_a_row - 2, 40))


def restart_description(
    job_id: str, policy: str, exit_code: int, delay: float, number: int
) -> str:
    when = "now" if delay <= 0 else f"in {delay:g} s"
    return (
        f"the command exited with code {exit_code}; restart {number} {when} "
        f"(restart policy {policy}); end it with apolo-jupyter kill {job_id} "
        f"(%apolo_kill {job_id} in a notebook)"
    )


def timeout_description(timeout: float, waited_for: str) -> str:
    why = f" ({waited_for})" if waited_for else ""
    return (
        f"the job could not start within its schedule timeout of {timeout:g} s"
        f"{why}: free room, choose a smaller preset, or give it a longer "
        "--schedule-timeout (schedule_timeout=)"
    )
