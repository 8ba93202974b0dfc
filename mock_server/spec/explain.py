"""Why an instance fails its schema, in words that name the field, from the Python jsonschema validator's errors.

Only failures come here (`validation.SchemaValidator` asks jsonschema_rs first), so this module, and jsonschema with
it, is imported on the first failure: a cold start answering only valid requests never loads it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry

from mock_server.spec.validation import InvalidInput

FORMATS = FormatChecker(["date-time"])


def validator(schema: Mapping[str, Any], registry: Registry) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=registry, format_checker=FORMATS)


def first_problem(explaining: Draft202012Validator, instance: Any, root: str) -> InvalidInput | None:
    """The most relevant failure, described; None if the instance is valid after all."""
    error = best_match(explaining.iter_errors(instance))
    return None if error is None else _describe(error, root)


def _describe(error: ValidationError, root: str) -> InvalidInput:
    error = _branch_error(error)
    location = ".".join(str(part) for part in ([root] if root else []) + list(error.absolute_path))
    schema: Any = error.schema  # a dict here: the Python validator is built from the spec's JSON
    if error.validator == "required" and isinstance(error.instance, dict):
        required: Any = error.validator_value
        missing = next((name for name in required if name not in error.instance), None)
        if missing is not None:
            field = f"{location}.{missing}" if location else missing
            return InvalidInput(f"{field}: required property is missing", field)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        extra = sorted(set(error.instance) - allowed)
        if extra:
            field = f"{location}.{extra[0]}" if location else extra[0]
            return InvalidInput(f"{field}: unknown property", field)
    if error.validator == "not" and schema.get("not", {}).get("required"):
        names = schema["not"]["required"]
        field = f"{location}.{names[0]}" if location else names[0]
        return InvalidInput(f"{field}: not allowed here", field)
    return InvalidInput(f"{location or 'body'}: {error.message}", location or None)


def _branch_error(error: ValidationError) -> ValidationError:
    """For a failed oneOf/anyOf, explain the failure of the branch the instance was evidently meant for.

    A batch operation with `"action": "CREATE_ORDER"` and a bad quantity should say `quantity is too small`,
    not `is not valid under any of the given schemas`: pick the branch whose constants the instance matched.
    """
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return error
    branches: dict[int, list[ValidationError]] = defaultdict(list)
    for sub in error.context:
        branches[int(sub.relative_schema_path[0])].append(sub)
    plausible = [errs for errs in branches.values() if not _misses_discriminator(errs, error)]
    if not plausible:
        return _discriminator_error(error) or error
    fewest: list[ValidationError] = min(plausible, key=len)
    return _branch_error(best_match(fewest) or error)


def _discriminator_error(error: ValidationError) -> ValidationError | None:
    """No branch matched its constant: say which values the discriminating property may take."""
    consts = [sub for sub in error.context or [] if sub.validator == "const"]
    if not consts:
        return None
    allowed = sorted({str(sub.validator_value) for sub in consts})
    first = consts[0]
    return ValidationError(
        f"{first.instance!r} is not one of {allowed}", validator="enum", path=first.absolute_path,
        instance=first.instance, schema={"enum": allowed},
    )


def _misses_discriminator(errors: Iterable[ValidationError], parent: ValidationError) -> bool:
    depth = len(parent.absolute_path)
    return any(
        sub.validator in ("const", "type") and len(sub.absolute_path) <= depth + 1 for sub in errors
    )
