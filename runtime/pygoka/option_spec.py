"""OptionSpec: how one ProcessorOptions field is named, typed and checked wherever it can be set.

Each field of pygoka.options.ProcessorOptions carries an OptionSpec in its dataclass metadata. From it come the
`pygoka run` flag, the PYGOKA_* environment variable, the key of a ProcessorGroup's spec.options (with its JSON
schema, which the API server enforces) and the checks ProcessorOptions itself makes, so that the four can never
disagree: a field added to ProcessorOptions appears in each of them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

#: Kind is the type of an option's value outside Python: what its flag, variable and schema accept.
Kind = Literal["bool", "int", "float", "str", "map"]
#: Place says who sets an option on Kubernetes: spec.options ("options"), the operator from the spec's topic fields
#: ("topics"), the operator per pod ("pod"), or nobody, because the value is a Python object ("python").
Place = Literal["options", "topics", "pod", "python"]

#: METADATA_KEY is the dataclass metadata key holding a field's OptionSpec.
METADATA_KEY = "pygoka.option"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class OptionSpec:
    """OptionSpec describes one option: help, kind, constraints, and where Kubernetes sets it."""

    help: str
    kind: Kind | None = None
    place: Place = "options"
    choices: tuple[str, ...] = ()
    #: minimum is the smallest allowed number (exclusive: the value must be greater).
    minimum: float | None = None
    exclusive: bool = False
    #: name is the option's name outside Python (default: the field's); flag, variable and key derive from it.
    name: str = ""
    #: field is the ProcessorOptions field (filled in by option_specs).
    field: str = ""

    @property
    def flag(self) -> str:
        """flag is the `pygoka run` flag, e.g. --commit-interval."""
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        """env is the environment variable, e.g. PYGOKA_COMMIT_INTERVAL."""
        return "PYGOKA_" + self.name.upper()

    @property
    def key(self) -> str:
        """key is the camelCase key in a ProcessorGroup's spec (spec.options.<key>, or spec.<key> for topics)."""
        head, *rest = self.name.split("_")
        return head + "".join(part.capitalize() for part in rest)

    def parse(self, text: str, source: str) -> Any:
        """parse reads the value of a flag or variable (source names it in the ValueError)."""
        raw = text.strip()
        value: Any
        if self.kind == "bool":
            if raw.lower() not in (*_TRUE, *_FALSE):
                raise ValueError(f"{source} must be true or false (also 1/0, yes/no, on/off), not '{raw}'")
            value = raw.lower() in _TRUE
        elif self.kind == "int":
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{source} must be an integer, not '{raw}'") from None
        elif self.kind == "float":
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{source} must be a number, not '{raw}'") from None
        elif self.kind == "map":
            value = parse_map(raw, source)
        else:
            value = raw
        self.check(value, source)
        return value

    def format(self, value: Any) -> str:
        """format is value as the text parse reads back (what the operator puts in the pod's variable)."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "map":
            return json.dumps({str(k): str(v) for k, v in dict(value).items()}, sort_keys=True)
        return str(value)

    def check(self, value: Any, source: str | None = None) -> None:
        """check raises ValueError naming source (default: the field) when value breaks the constraints."""
        if value is None:
            return
        what = source or self.field
        if self.choices:
            shown = getattr(value, "value", value)
            if shown not in self.choices:
                raise ValueError(f"{what} must be one of {', '.join(self.choices)}, not '{shown}'")
        if self.minimum is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value) or (value <= self.minimum if self.exclusive else value < self.minimum):
                bound = f"greater than {self.minimum:g}" if self.exclusive else f"at least {self.minimum:g}"
                raise ValueError(f"{what} must be {bound}, not {value!r}")

    def schema(self) -> dict[str, Any]:
        """schema is the OpenAPI v3 schema of the value in a CRD (structural, as the API server needs)."""
        schema: dict[str, Any]
        if self.kind == "bool":
            schema = {"type": "boolean"}
        elif self.kind == "int":
            schema = {"type": "integer"}
        elif self.kind == "float":
            schema = {"type": "number"}
        elif self.kind == "map":
            schema = {"type": "object", "additionalProperties": {"type": "string"}}
        else:
            schema = {"type": "string"}
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = int(self.minimum) if self.kind == "int" else self.minimum
            if self.exclusive:
                schema["exclusiveMinimum"] = True
        return {**schema, "description": self.help}


def option(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, help: str,
           kind: Kind | None = None, **spec: Any) -> Any:
    """option is a dataclass field whose metadata is its OptionSpec."""
    metadata = {METADATA_KEY: OptionSpec(help=help, kind=kind, **spec)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_specs(cls: type) -> list[OptionSpec]:
    """option_specs are the OptionSpecs of a dataclass's fields, in field order, with field and name filled in."""
    specs = []
    for field in dataclasses.fields(cls):
        spec: OptionSpec = field.metadata[METADATA_KEY]
        specs.append(dataclasses.replace(spec, field=field.name, name=spec.name or field.name))
    return specs


def parse_map(raw: str, source: str) -> dict[str, str]:
    """parse_map reads a JSON object of librdkafka or topic settings, e.g. {"linger.ms": "20"}."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        example = '{"linger.ms": "20"}'
        raise ValueError(f"{source} must be a JSON object of settings (e.g. {example}): {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source} must be a JSON object of settings, not {type(value).__name__}")
    return {str(key): str(item).lower() if isinstance(item, bool) else str(item) for key, item in value.items()}
