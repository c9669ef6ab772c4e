"""``JobLauncherView``: a form that builds an ``%apolo_run`` line and starts the job.

It validates as the user types (image, env, volumes, ports, life span) and never
calls ``on_run`` with invalid input. ``value`` is the equivalent magic line.
"""

from __future__ import annotations

import functools
import html
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as w

from ._mount_picker import MountPicker


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


Check = Callable[[str], object]  # raises on invalid input, with a how-to message


class JobLauncherView(w.VBox):
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
        self._checks = (check_image, check_env, check_port_pair, check_life_span)
        self._on_run = on_run
        self.picker = picker
        self.image = w.Text(value="python:3.11", description="Image")
        self.preset = w.Dropdown(options=list(presets), description="Preset")
        self.command = w.Text(placeholder="python3 train.py", description="Command")
        self.name = w.Text(placeholder="optional", description="Name")
        self.env = w.Textarea(placeholder="NAME=value, one per line", description="Env")
        self.ports = w.Text(
            placeholder="8080:80 (local:job), space separated", description="Forward"
        )
        self.life_span = w.Text(placeholder="e.g. 2h", description="Life span")
        self.preemptible = w.Checkbox(description="preemptible", indent=False)
        self.run = w.Button(description="Run", button_style="primary", icon="play")
        self.errors = w.HTML()
        self.line = w.HTML()
        self.status = w.VBox()
        for field in (
            self.image,
            self.preset,
            self.command,
            self.name,
            self.env,
            self.ports,
            self.life_span,
            self.preemptible,
        ):
            field.observe(lambda _: self.validate(), names="value")
        self.run.on_click(lambda _: self._run())
        super().__init__(
            children=[
                self.image,
                self.preset,
                self.command,
                self.name,
                self.env,
                w.HTML("<b>Mounts</b>"),
                picker,
                self.ports,
                self.life_span,
                self.preemptible,
                w.HBox([self.run, self.errors]),
                self.line,
                self.status,
            ]
        )
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

    def problems(self) -> list[str]:
        check_image, check_env, check_port_pair, check_life_span = self._checks
        req = self.request()
        found: list[str] = []

        def attempt(what: str, call: Callable[[], object]) -> None:
            try:
                call()
            except Exception as exc:  # every check says how to fix its input
                found.append(f"{what}: {exc}")

        attempt("image", lambda: check_image(req.image))
        if not req.command:
            found.append("command: give the program to run, e.g. python3 train.py")
        if req.env:
            attempt("env", lambda: check_env(list(req.env)))
        for pair in req.port_forwards:
            attempt("forward", functools.partial(check_port_pair, pair))
        if req.life_span:
            attempt("life span", lambda: check_life_span(req.life_span))
        return found

    def validate(self) -> bool:
        found = self.problems()
        self.run.disabled = bool(found)
        self.errors.value = "<br>".join(
            f'<span style="color:#b00020">{html.escape(p)}</span>' for p in found
        )
        self.line.value = "" if found else f"<code>{html.escape(self.value)}</code>"
        return not found

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

    def _run(self) -> None:
        if self.validate():
            self._on_run(self.request())

    def show_status(self, view: w.Widget) -> None:
        self.status.children = (view,)

    def show_error(self, message: str) -> None:
        self.errors.value = f'<span style="color:#b00020">{html.escape(message)}</span>'

    def __repr__(self) -> str:
        return f"JobLauncher({self.value})"
