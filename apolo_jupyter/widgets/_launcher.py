"""``JobLauncherView``: a form that builds an ``%apolo_run`` line and starts the job.

Each field is a row of an aligned grid, with its error under it once the user
has touched it, said in the form's words (not the CLI's flags). Run stays
disabled while the form is invalid (a muted line beside it says what is
missing), while a launch is in flight, and after a launch until the form
changes, so a double click never starts two jobs. ``on_run`` is never called with
invalid input. ``value`` is the equivalent magic line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as w

from ..client._image_parser import IMAGE_EXAMPLES
from ..client._job_names import JOB_NAME_RULE, job_name_ok
from ._forms import error_html, field_row, form_grid, muted_html, style_carrier
from ._mount_picker import MountPicker
from ._static import KernelOwned


@dataclass(frozen=True)
class LaunchRequest:
    image: str
    preset: str
    command: str
    env: tuple[str, ...]
    volumes: tuple[str, ...]
    port_forwards: tuple[str, ...]
    preemptible: bool
    life_span: str
    name: str


Check = Callable[[str], object]  # raises on invalid input


def _quoted(text: str) -> str:
    return f"“{text}”"


class JobLauncherView(KernelOwned, w.VBox):
    def __init__(
        self,
        *,
        presets: Sequence[str],
        picker: MountPicker,
        check_image: Check,
        check_env: Callable[[list[str]], object],
        check_port_pair: Check,
        check_life_span: Check,
        on_run: Callable[[LaunchRequest], None],
    ) -> None:
        self._check_image = check_image
        self._check_env = check_env
        self._check_port_pair = check_port_pair
        self._check_life_span = check_life_span
        self._on_run = on_run
        self.picker = picker
        full = w.Layout(width="100%")
        self.image = w.Text(value="python:3.11", placeholder="python:3.11", layout=full)
        self.preset = w.Dropdown(options=list(presets), layout=w.Layout(width="16em"))
        self.command = w.Text(placeholder="python3 train.py", layout=full)
        self.name = w.Text(placeholder="optional", layout=full)
        self.env = w.Textarea(placeholder="NAME=value, one per line", layout=full)
        self.ports = w.Text(
            placeholder="8080:80 (this machine:job), space separated", layout=full
        )
        self.life_span = w.Text(
            placeholder="e.g. 2h or 1h30m", layout=w.Layout(width="16em")
        )
        self.preemptible = w.Checkbox(
            description="may be suspended and restarted (cheaper)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.run = w.Button(
            description="Run",
            button_style="primary",
            icon="play",
            tooltip="start the job",
        )
        self.summary = w.HTML()
        self.line = w.HTML()
        self.status = w.VBox()
        self._fields: dict[str, w.Widget] = {
            "image": self.image,
            "preset": self.preset,
            "command": self.command,
            "name": self.name,
            "env": self.env,
            "ports": self.ports,
            "life_span": self.life_span,
            "preemptible": self.preemptible,
        }
        self._errors = {key: w.HTML() for key in self._fields}
        self._touched: set[str] = set()
        self._in_flight = False
        self._launched = ""  # the job started from the form as it stands
        self._launch_error = ""  # why the platform refused the last launch
        for key, field in self._fields.items():
            field.observe(lambda _, key=key: self._changed(key), names="value")
        self.run.on_click(lambda _: self._run())
        rows = [
            field_row("Image", self.image, self._errors["image"]),
            field_row("Preset", self.preset, self._errors["preset"]),
            field_row("Command", self.command, self._errors["command"]),
            field_row("Name", self.name, self._errors["name"]),
            field_row("Environment", self.env, self._errors["env"]),
            field_row("Storage", picker),
            field_row("Forward ports", self.ports, self._errors["ports"]),
            field_row("Life span", self.life_span, self._errors["life_span"]),
            field_row("Preemptible", self.preemptible),
            field_row(
                "",
                w.HBox([self.run, self.summary], layout=w.Layout(align_items="center")),
            ),
            field_row("", self.line),
        ]
        super().__init__(children=[style_carrier(), form_grid(rows), self.status])
        self.validate()

    def request(self) -> LaunchRequest:
        return LaunchRequest(
            image=self.image.value.strip(),
            preset=str(self.preset.value or ""),
            command=self.command.value.strip(),
            env=tuple(
                line.strip() for line in self.env.value.splitlines() if line.strip()
            ),
            volumes=tuple(self.picker.value),
            port_forwards=tuple(self.ports.value.split()),
            preemptible=bool(self.preemptible.value),
            life_span=self.life_span.value.strip(),
            name=self.name.value.strip(),
        )

    # -- checking, in the form's words -------------------------------------------------

    def field_errors(self) -> dict[str, str]:
        """Each invalid field's problem (whether shown yet or not)."""
        req = self.request()
        found: dict[str, str] = {}
        if not req.image:
            found["image"] = "enter an image, e.g. python:3.11"
        elif not self._ok(self._check_image, req.image):
            found["image"] = (
                f"{_quoted(req.image)} is not an image name: {IMAGE_EXAMPLES}"
            )
        if not req.command:
            found["command"] = "enter the program to run, e.g. python3 train.py"
        if req.name and not job_name_ok(req.name):
            found["name"] = f"{_quoted(req.name)} is not a job name: {JOB_NAME_RULE}"
        for number, line in enumerate(self.env.value.splitlines(), 1):
            line = line.strip()
            if not line or self._ok(lambda spec: self._check_env([spec]), line):
                continue
            if "=" not in line:
                found["env"] = (
                    f"line {number}: write NAME=value (no “=” in {_quoted(line)})"
                )
            else:
                name = line.partition("=")[0]
                found["env"] = (
                    f"line {number}: {_quoted(name)} is not a variable name "
                    "(letters, digits and _, not starting with a digit)"
                )
            break
        for pair in req.port_forwards:
            if not self._ok(self._check_port_pair, pair):
                found["ports"] = (
                    f"{_quoted(pair)}: write pairs of this machine's port and the "
                    "job's, such as 8080:80 (ports 1 to 65535)"
                )
                break
        if req.life_span and not self._ok(self._check_life_span, req.life_span):
            found["life_span"] = self._life_span_problem(req.life_span)
        return found

    def _life_span_problem(self, text: str) -> str:
        try:
            self._check_life_span(text)
        except Exception as exc:
            if "at least" in str(exc):
                return "a life span is at least 1 minute, e.g. 30m"
        return f"{_quoted(text)} is not a duration: write e.g. 90s, 30m, 2h or 1h30m"

    @staticmethod
    def _ok(check: Callable[[str], object], value: str) -> bool:
        try:
            check(value)
        except Exception:  # every check raises on invalid input, whatever its type
            return False
        return True

    def problems(self) -> list[str]:
        return [f"{key}: {text}" for key, text in self.field_errors().items()]

    def validate(self) -> bool:
        found = self.field_errors()
        for key, box in self._errors.items():
            shown = found.get(key, "") if key in self._touched else ""
            box.value = error_html(shown)
        blocked = bool(found) or self._in_flight or bool(self._launched)
        self.run.disabled = blocked
        self.summary.value = self._summary(found)
        self.line.value = "" if found else muted_html("Same as", self.value)
        return not found

    def _summary(self, found: dict[str, str]) -> str:
        if self._launch_error:
            return error_html(f"could not start the job: {self._launch_error}")
        if self._in_flight:
            text = "starting the job…"
        elif self._launched:
            text = f"Started {self._launched}. Change the form to run another."
        elif not found:
            return ""
        elif set(found) == {"command"} and "command" not in self._touched:
            text = "To run: enter a command."
        else:
            text = "To run: fix the fields marked above."
        return muted_html(text)

    def _changed(self, key: str) -> None:
        self._touched.add(key)
        self._launched = self._launch_error = ""
        self.validate()

    @property
    def value(self) -> str:
        """The equivalent magic line."""
        req = self.request()
        parts = ["%apolo_run", "-s", req.preset]
        for spec in req.volumes:
            parts += ["-v", spec]
        for spec in req.env:
            parts += ["-e", spec]
        for pair in req.port_forwards:
            parts += ["--port-forward", pair]
        if req.name:
            parts += ["-n", req.name]
        if req.life_span:
            parts += ["--life-span", req.life_span]
        if req.preemptible:
            parts.append("--preemptible")
        return f"{shlex.join([*parts, req.image])} -- {req.command}"

    # -- running --------------------------------------------------------------------

    def _run(self) -> None:
        if self._in_flight or self._launched:
            return  # a click that was queued while the previous launch ran
        self._touched.update(self._fields)
        if not self.validate():
            return
        self._in_flight = True
        self.validate()
        try:
            self._on_run(self.request())
        finally:
            self._in_flight = False
            self.validate()

    def show_status(self, view: w.Widget) -> None:
        """The job started: show its status, and hold Run until the form changes."""
        job = getattr(view, "snapshot", None)
        job_id = job.job.id if job is not None and job.job is not None else "the job"
        self._launched = job_id
        self.status.children = (view,)
        self.validate()

    def show_error(self, message: str) -> None:
        """The platform refused the launch: say why beside Run."""
        self._launched = ""
        self._launch_error = message
        self.validate()

    def __repr__(self) -> str:
        return f"JobLauncher({self.value})"
