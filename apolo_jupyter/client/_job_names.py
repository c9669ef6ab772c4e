"""What a job name may be, as ``apolo run -n`` checks it before it asks the
platform: one rule for the magics, ``apolo-jupyter run`` and the launcher."""

from __future__ import annotations

import re

_JOB_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MIN_LENGTH, MAX_LENGTH = 3, 40
JOB_NAME_RULE = (
    f"{MIN_LENGTH}-{MAX_LENGTH} lowercase letters, digits and single dashes, "
    "starting with a letter, e.g. my-job"
)


def job_name_ok(name: str) -> bool:
    return (
        MIN_LENGTH <= len(name) <= MAX_LENGTH and _JOB_NAME.fullmatch(name) is not None
    )
