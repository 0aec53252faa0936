"""The hot options in force, and the one path that changes them (property, control file).

`aug_p`, `pipe_p`, `epochs_per_frame` and `example_prob` can change while
`fit` runs. Whichever way a change comes (`seq.aug_p = 0.9`, a control file,
`augframe control set`), it is checked by the same rules: the registry's
(`augframe.options.registry.check`) and the two that depend on the run
(`"auto"` needs background builds, `example_prob > 0` needs an
`example_dir`). A change is checked, recorded and told to the listeners (the
frame engine) under the owner's lock (`serialise_with`), so a change never
interleaves with an epoch end, `regenerate()` or `close()`, and takes effect
at the same boundary whichever path or thread made it: new probabilities
from the next build that starts (a pending background build is restarted), a
new frame length at the next epoch end, a new `example_prob` from the next
frame (docs/design/engine.md, "Threading model"). A refused value raises `ConfigError` when set by property and is one
`ControlFileWarning` from a control file, which keeps the last good value.

Example:
>>> hot = HotSettings.of(background=True, writes_examples=False)
>>> print(hot.set("aug_p", 0.5))
aug_p null (the pipeline's own) -> 0.5
>>> hot.set("example_prob", 0.2)
Traceback (most recent call last):
...
augframe.errors.ConfigError: Invalid value for argument `example_prob`. Received: example_prob=0.2. Expected 0.0 without `example_dir`. Pass example_dir='example_images' to say where examples go.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from augframe import _warn
from augframe.balance import Balance, Custom, Power
from augframe.errors import ConfigError, ControlFileWarning
from augframe.options import registry as opts
from augframe.options.control_file import (
    ControlFile,
    file_values,
    initial_values,
    json_forms,
    replaced_values,
    same_value,
    write_control,
)

__all__ = [
    "INSTANCE",
    "PROBABILITIES",
    "ControlLink",
    "HotSettings",
    "check_balance_rules",
    "check_hot_rules",
]

logger = logging.getLogger("augframe")

INSTANCE = Power(1.0)
"""The policy of a frame of every native once: the default with
`samples_per_class=None`."""

PROBABILITIES = ("aug_p", "pipe_p")
"""The hot options for which None means something: the pipeline's own."""

Listener = Callable[[frozenset[str]], None]


def check_hot_rules(
    name: str,
    value: Any,
    *,
    background: bool,
    writes_examples: bool,
    every_native_once: bool = False,
    rolling: bool = False,
    in_force: Any = None,
) -> None:
    """The rules of a checked hot value with the options it depends on.

    Args:
        name: the hot option.
        value: its value, checked by the registry (a policy: a `Balance`).
        background: frames are built in the background.
        writes_examples: an `example_dir` was given.
        every_native_once: `samples_per_class=None` (a frame is every native
            once: only the natives' own mix, "instance", exists).
        rolling: `refresh="rolling"` (each slot keeps its class).
        in_force: the value it would replace (None: at construction).

    Raises:
        ConfigError: "auto" without background builds, examples without
            `example_dir`, or a class-mix policy the frames cannot follow.
    """
    if name == "balance":
        check_balance_rules(
            value,
            every_native_once=every_native_once,
            rolling=rolling,
            in_force=in_force,
        )
    if name == "epochs_per_frame" and value == "auto" and not background:
        raise opts.invalid(
            "epochs_per_frame",
            value,
            "an integer with background=False",
            "'auto' chooses the frame length from builds that run beside "
            "training: pass background=True, or an integer epochs_per_frame.",
        )
    if name == "example_prob" and value > 0 and not writes_examples:
        raise opts.invalid(
            "example_prob",
            value,
            "0.0 without `example_dir`",
            "Pass example_dir='example_images' to say where examples go.",
        )


def check_balance_rules(
    policy: Balance,
    *,
    every_native_once: bool,
    rolling: bool,
    in_force: Balance | None = None,
) -> None:
    """Refuses, by name, a class-mix policy the frames cannot follow.

    A frame of every native once (`samples_per_class=None`) has the natives'
    own mix: only "instance". Rolling frames keep each slot's class: they
    follow a constant mix (a power of the natives, e.g. "sqrt") chosen at
    construction, never one that varies between frames, and a hot change
    (`in_force`: the policy it would replace) is refused.

    Raises:
        ConfigError: naming `balance`, the policy and the fix.

    Example:
    >>> check_balance_rules(Power(0.5), every_native_once=False, rolling=True)
    >>> from augframe.balance import Progressive
    >>> check_balance_rules(Progressive(), every_native_once=False, rolling=True)
    Traceback (most recent call last):
    ...
    augframe.errors.ConfigError: Invalid value for argument `balance`. Received: balance='progressive'. Expected a constant mix ('class', 'instance', 'sqrt' or a number q) with refresh='rolling'. Rolling frames refresh slices of slots that each keep their class, so the class mix cannot change from frame to frame. Pass refresh='frame' for a schedule, or a constant policy.
    """
    if every_native_once and not policy.is_instance:
        raise opts.invalid(
            "balance",
            policy.to_json(),
            "'instance' with samples_per_class=None (where the constructor "
            "reads the default 'class' as it)",
            "A frame of every native once has the natives' own class mix. "
            "Pass samples_per_class (e.g. 'balanced') to mix classes by a "
            "policy, or leave `balance` out.",
        )
    if rolling and not every_native_once and policy.varies:
        raise opts.invalid(
            "balance",
            policy.to_json(),
            "a constant mix ('class', 'instance', 'sqrt' or a number q) with "
            "refresh='rolling'",
            "Rolling frames refresh slices of slots that each keep their "
            "class, so the class mix cannot change from frame to frame. Pass "
            "refresh='frame' for a schedule, or a constant policy.",
        )
    if rolling and in_force is not None and policy != in_force:
        raise opts.invalid(
            "balance",
            policy.to_json(),
            f"{json.dumps(in_force.to_json())}, the mix this rolling frame "
            "(refresh='rolling') was built with",
            "Rolling frames keep each slot's class, so their mix is fixed "
            "while they run. Build a new FrameSequence with this balance, or "
            "one with refresh='frame' to change it while fit runs.",
        )


class HotSettings:
    """The hot options in force, checked by one set of rules.

    Args:
        values: a checked value for every hot option (`HOT_OPTIONS`), as
            `augframe.options.config.FrameConfig.hot` holds them (`of`
            checks given values).
        background: frames are built in the background (`"auto"` needs it).
        writes_examples: an `example_dir` was given (`example_prob > 0`
            needs it).
        every_native_once: `samples_per_class=None`: `balance` stays
            "instance" (`check_balance_rules`).
        rolling: `refresh="rolling"`: `balance` stays "class".

    Raises:
        ConfigError: a value is refused (see the module docstring).
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        *,
        background: bool,
        writes_examples: bool,
        every_native_once: bool = False,
        rolling: bool = False,
    ) -> None:
        self.background = background
        self.writes_examples = writes_examples
        self.every_native_once = every_native_once
        self.rolling = rolling
        self._values = {name: values[name] for name in opts.HOT_OPTIONS}
        self._listeners: list[Listener] = []
        self._lock: AbstractContextManager[Any] = threading.RLock()

    @classmethod
    def of(
        cls,
        *,
        background: bool,
        writes_examples: bool,
        every_native_once: bool = False,
        rolling: bool = False,
        **given: Any,
    ) -> HotSettings:
        """Hot settings from the given values and the registry's defaults."""
        context = {
            "background": background,
            "writes_examples": writes_examples,
            "every_native_once": every_native_once,
            "rolling": rolling,
        }
        values = {}
        for name in opts.HOT_OPTIONS:
            values[name] = opts.check(name, given.get(name, opts.OPTIONS[name].default))
            if name == "balance" and every_native_once and "balance" not in given:
                values[name] = INSTANCE  # the default there (`frame_config`)
            check_hot_rules(name, values[name], **context)
        return cls(values, **context)

    def check(self, name: str, value: Any) -> Any:
        """`value` for hot option `name`, checked; raises `ConfigError` if refused."""
        if name not in opts.HOT_OPTIONS:
            raise ConfigError(
                f"`{name}` cannot change while `fit` runs. Options that can: "
                f"{', '.join(opts.HOT_OPTIONS)}. Build a new FrameSequence to change it."
            )
        if name == "balance" and self._is_callable_in_force(value):
            return self._values["balance"]  # its text, as the file writes it
        value = opts.check(name, value)
        if name == "balance" and self.every_native_once and value.is_class_balance:
            value = (
                INSTANCE  # "class" reads as the natives' mix there, as at construction
            )
        check_hot_rules(
            name,
            value,
            background=self.background,
            writes_examples=self.writes_examples,
            every_native_once=self.every_native_once,
            rolling=self.rolling,
            in_force=self._values.get(name),
        )
        return value

    def _is_callable_in_force(self, value: Any) -> bool:
        """`value` is the text a control file writes for the callable policy
        in force ("callable <name>"): the same policy, no change."""
        policy = self._values.get("balance")
        return (
            isinstance(policy, Custom)
            and isinstance(value, str)
            and value == policy.to_json()
        )

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    @property
    def balance(self) -> Balance:
        """The class-mix policy in force (`augframe.balance`)."""
        return self._values["balance"]

    @property
    def aug_p(self) -> float | None:
        return self._values["aug_p"]

    @property
    def pipe_p(self) -> float | None:
        return self._values["pipe_p"]

    @property
    def epochs_per_frame(self) -> int | str:
        return self._values["epochs_per_frame"]

    @property
    def example_prob(self) -> float:
        return self._values["example_prob"]

    def values(self) -> dict[str, Any]:
        """The values in force, by name, as a control file and a saved state
        hold them: JSON values (a policy as its `to_json()` form)."""
        return json_forms(self._values)

    def restore(self, values: Mapping[str, Any]) -> None:
        """Takes back the values a saved state holds, each checked, telling no
        listener (the owner restores its frames itself, under its lock).

        Raises:
            ConfigError: a value is refused; nothing changes.
        """
        checked = self.checked(values)
        with self._lock:
            self._values.update(checked)

    def checked(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values a saved state holds, each checked as `restore` checks
        them; nothing changes (the owner checks them before it rebuilds a
        frame, so that a refused state changes nothing).

        Raises:
            ConfigError: a value is refused.
        """
        return {
            name: self.check(name, values.get(name, self._values[name]))
            for name in opts.HOT_OPTIONS
        }

    def subscribe(self, listener: Listener) -> None:
        """Calls `listener(names)` after every change, with the names changed."""
        self._listeners.append(listener)

    def serialise_with(self, lock: AbstractContextManager[Any]) -> None:
        """Makes every change run under `lock` (re-entrant), the owner's command lock.

        The frame engine passes its own, so that a change and the engine's
        commands (epoch end, `regenerate()`, `close()`) run one at a time.
        """
        self._lock = lock

    def set(self, name: str, value: Any) -> str | None:
        """Sets one hot option; returns "name old -> new", or None if unchanged.

        The value is checked, recorded and told to the listeners under the
        owner's lock (see `serialise_with`), from whichever thread sets it.

        Raises:
            ConfigError: the value is refused; nothing changes.
        """
        value = self.check(name, value)
        with self._lock:
            old = self._values[name]
            if value == old:
                return None
            self._values[name] = value
            for listener in list(self._listeners):
                listener(frozenset((name,)))
        return f"{name} {_shown(name, old)} -> {_shown(name, value)}"


class ControlLink:
    """The control file's way into the hot settings, read at every epoch end.

    At construction the file is (re)written with the values in force, so
    that what the user sees is what is in force. An existing valid file whose
    values differ is not replaced silently: one `ControlFileWarning` names
    each value replaced ("key: old -> new"). A run that resumes keeps the
    file's values instead: `adopt=True`, or `adopt_file_values()` after
    construction.

    Args:
        path: the control file.
        hot: the settings it changes.
        say: where the one line per applied change goes.
        adopt: keep the values of an existing valid file (a resumed run):
            they are set on `hot` (a refused one is one warning and keeps
            the constructor's), and the file keeps them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        hot: HotSettings,
        *,
        say: Callable[[str], None],
        adopt: bool = False,
    ) -> None:
        self.hot = hot
        self._say = say
        self.path = path
        self.file = ControlFile(path)
        self.replaced: dict[str, Any] = {}
        """The values of the existing file that the constructor's replaced."""
        self._regenerate_consumed = False
        old = file_values(path) or {}
        new = initial_values(hot.values())
        self.replaced = {
            k: v for k, v in old.items() if k in new and not same_value(k, v, new[k])
        }
        if adopt:
            self.adopt_file_values()
            return
        write_control(path, new)
        self.file.poll()
        if self.replaced:
            _warn.warn(
                f"Control file {str(path)!r} held other values; this sequence "
                f"wrote its own: {replaced_values(self.replaced, new)}. Pass "
                "them to the constructor to keep them (a run that restores a "
                "saved state, e.g. with augframe.BackupAndRestore, puts the "
                "state's values back when fit begins).",
                ControlFileWarning,
            )

    def adopt_file_values(self) -> None:
        """Keeps the values the file held before construction (a resumed run).

        Sets them on the hot settings (a refused one is one warning and the
        constructor's stays) and writes the file again with them and no
        command pending. Without an earlier file, nothing changes.
        """
        adopted = dict(self.replaced)
        self.replaced = {}
        for name, value in list(adopted.items()):
            if name not in opts.HOT_OPTIONS:
                continue
            try:
                self.hot.set(name, value)
            except ConfigError as exc:
                adopted.pop(name)
                self.file.refuse(f"{name}={value!r} not kept: {exc}")
        values = initial_values(self.hot.values())
        if adopted.get("learning_rate") is not None:
            values["learning_rate"] = adopted["learning_rate"]
        write_control(self.path, values)
        self.file.poll()

    def rewrite(self) -> None:
        """Writes the values in force (a restored state's) and reads them back.

        The learning rate stays the file's: the one set since this sequence
        was made, else the one the file held before (the optimizer's own,
        null, when it held none): a resumed run keeps the rate it was steered to.
        """
        values = initial_values(self.hot.values())
        now = (file_values(self.file.path) or {}).get("learning_rate")
        values["learning_rate"] = (
            now if now is not None else self.replaced.get("learning_rate")
        )
        write_control(self.file.path, values)
        self.file.poll()

    def apply(self) -> bool:
        """Applies a changed file; True when it asks for a new frame now.

        Only the keys the edit changed apply, so a value set by property stays
        until the file changes that key. A key the file leaves out (or sets to
        null) keeps its value, except `aug_p` and `pipe_p`, where null
        restores the pipeline's own. A value that the hot settings refuse is
        one `ControlFileWarning`; the last good value stays. A
        `learning_rate` that no `ControlCallback` applies is one warning.
        `"regenerate": true` fires once: the file is then rewritten with
        false (`ControlFile.consume_regenerate`).
        """
        previous = self.file.current
        if not self.file.poll():
            return False
        settings = self.file.current
        changed = []
        for name in opts.HOT_OPTIONS:
            if _written(settings, name) == _written(previous, name):
                continue  # not what this edit changed
            value = getattr(settings, name)
            given = value is not None or (
                name in PROBABILITIES and name in settings.model_fields_set
            )
            if not given:
                continue
            try:
                change = self.hot.set(name, value)
            except ConfigError as exc:
                self.file.refuse(
                    f"{name}={value!r} not applied: {exc} Keeping "
                    f"{name}={_shown(name, self.hot[name])}."
                )
                continue
            if change is not None:
                changed.append(change)
        self.file.learning_rate_unapplied()
        regenerate = self._regenerate(settings, previous)
        if regenerate:
            changed.append("regenerate (a new frame now)")
        if changed:
            self._say("control file: " + ", ".join(changed))
        return regenerate

    def _regenerate(self, settings: Any, previous: Any) -> bool:
        """True once per request: when the file turns `regenerate` to true."""
        if not settings.regenerate:
            self._regenerate_consumed = False
            return False
        if previous.regenerate or self._regenerate_consumed:
            # Still true from a request already served (the rewrite lost a
            # race with the user's edit): try the rewrite again.
            if self.file.consume_regenerate():
                self._regenerate_consumed = False
            return False
        self._regenerate_consumed = not self.file.consume_regenerate()
        return True


def _written(settings: Any, name: str) -> tuple[Any, bool]:
    """What a control file says of `name`: its value and whether it is written."""
    return getattr(settings, name), name in settings.model_fields_set


def _shown(name: str, value: Any) -> str:
    """A hot value in a log line; None for aug_p / pipe_p in words, a policy
    as control.json writes it."""
    if value is None and name in PROBABILITIES:
        return "null (the pipeline's own)"
    if isinstance(value, Balance):
        form = value.to_json()
        return form if isinstance(form, str) else json.dumps(form)
    return str(value)
