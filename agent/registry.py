"""Building components from validated specs, and how to add a component type.

How to add a component type
---------------------------
One class, carrying one declaration, plus one line here:

1. Write the class in its own module (``agent/sources/foo.py``) against the interface of its
   kind (below) and declare what it accepts in a class attribute::

       class FooSource(PollableSource):
           SCHEMA = Schema(
               keys=(Key("host", required=True), Key("batchSize", integer(1), 100)),
               rules=_foo_rules,          # optional cross-key checks (agent.config.schema)
               batch_key="batchSize",     # optional: checked against transactionCapacity
               listen=("host", "port"),   # optional: a socket it binds, for port conflicts
           )

           @classmethod
           def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> FooSource:
               s = spec.settings          # every key of SCHEMA, converted, defaults applied
               return cls(spec.name, s["host"], s["batchSize"], ctx.metrics.source(spec.name))

   Keys are Flume's exact property names. ``from_spec`` indexes ``spec.settings`` and restates
   no default and no check: anything it could refuse belongs in the schema (a converter, a
   ``floor`` or a rule), so that ``--validate`` exit 0 means the agent starts. A key Flume
   accepts but flumelet never reads is declared with ``ignored="why"``.
2. Add ``Builtin("foo", "agent.sources.foo:FooSource", java=("org.apache.flume...FooSource",))``
   to the kind's tuple in ``agent/config/types.py`` (and drop it from ``FLUME_ONLY`` there if
   it was listed). The module is imported only when a configuration uses the type.
3. The tests pick the type up by themselves: tests/unit/test_component_types.py builds every
   registered type with its defaults and with sample values of every key, and checks that
   construction reads every key validation accepts (``ignored`` ones excepted).

A plug-in is the same class outside this package: ``type = mypackage.module.ClassName`` (or
``mypackage.module:ClassName``) imports it, its ``SCHEMA`` (none: it takes no keys) validates
its keys, and it is built like a built-in. tests/plugins/ holds an example source and sink.

The interface of each kind
--------------------------
``@classmethod from_spec(cls, spec, ctx: BuildContext, ...) -> instance``, where ``spec`` is the
validated ``agent.config.model`` spec (``spec.name``, ``spec.settings``, ``spec.location``):

- source: a ``PollableSource`` (``async process() -> Status``, never sleeps; call
  ``self.wakeup()`` when new input may exist) or an ``EventDrivenSource`` (accepts in
  ``start()``). The graph builder assigns ``source.channel_processor`` after ``from_spec``.
- sink: a ``Sink``; the graph builder assigns ``sink.channel`` after ``from_spec``.
  ``process()`` handles one batch in one channel transaction: nothing to take -> BACKOFF;
  failure -> roll back, then raise (the runner logs and backs off).
- channel: a ``Component`` with ``transaction()``, ``add_listener()`` and ``size()``
  (``agent.components.Channel``).
- interceptor: an ``agent.interceptors.base.Interceptor`` (``intercept(event)``).
- selector: ``from_spec(spec, ctx, channels)`` -> ``agent.selectors.ChannelSelector``.
- processor (a sink group's): ``from_spec(spec, sinks, ctx)`` -> ``agent.sinkprocessors``'s
  ``SinkProcessor``.

``ctx.clock`` is the only source of "now"; ``ctx.metrics`` gives counter groups
(``ctx.metrics.source(name)`` / ``.sink(name)`` / ``.channel(name)``); ``ctx.channels`` maps
channel names to the built channels; ``ctx.drain_state(channel)`` says what the sinks of a
channel are doing (for a source whose batch it refused: ``ChannelException.channel`` names it).
``start()``/``stop()`` are async and idempotent; the
runtime starts channels, then sinks, then sources, and stops in reverse with a drain period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.components import Clock, SystemClock
from agent.config.types import TypeLookupError, lookup
from agent.metrics import MetricsRegistry

if TYPE_CHECKING:
    from agent.components import Channel
    from agent.config.model import ComponentSpec

@dataclass
class BuildContext:
    """What every ``from_spec`` receives besides its spec."""

    clock: Clock = field(default_factory=SystemClock)
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    channels: dict[str, Channel] = field(default_factory=dict)
    # How the sinks draining a channel are doing, in words, and whether one is failing (the
    # running Agent sets it): what a source says when that channel refuses its batch.
    drain_state: Callable[[str], tuple[str, bool]] = field(
        default=lambda channel: ("its sinks are slower than the source", False))


class ComponentConfigError(ValueError):
    """A component refused its settings; the message names the component and where it came from."""

    def __init__(self, spec: ComponentSpec, problem: str) -> None:
        where = f" ({spec.location})" if spec.location is not None else ""
        super().__init__(f"{spec.kind} {spec.name}{where}: {problem}")
        self.spec = spec
        self.problem = problem


def build(kind: str, spec: ComponentSpec, ctx: BuildContext, *extra: Any) -> Any:
    """The component for a validated ``spec``: its class's ``from_spec``.

    ``extra``: what the kind's interface adds (a selector's channels, a processor's sinks).
    Raises ComponentConfigError; validation has checked everything a built-in could refuse,
    so for those it only fires on an environment problem (a file, a locked directory).
    """
    try:
        component_type = lookup(kind, spec.type)
    except TypeLookupError as exc:
        raise ComponentConfigError(spec, str(exc)) from exc
    factory: Callable[..., Any] = component_type.cls.from_spec
    try:
        if kind == "processor":
            return factory(spec, *extra, ctx)
        return factory(spec, ctx, *extra)
    except ComponentConfigError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ComponentConfigError(spec, str(exc)) from exc
