"""Validate a study config and give every mistake one clear message.

`snakemake.utils.validate` reports the first schema error in jsonschema's words; users need the
key, the bad value and the valid choices. So we run jsonschema ourselves first, turn its best
error into one sentence, add the checks a schema cannot express (baseline in devices, model
names torchvision knows), and only then let snakemake fill in the defaults.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from speedatlas.plan.config_limits import combine, gather, size_mistake

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

# Keys a model mapping may override; everything else is study-wide.
MODEL_OVERRIDES = (
    "devices",
    "torch_versions",
    "batch_sizes",
    "dtypes",
    "modes",
    "variants",
    "input_size",
    "num_classes",
    "cpu_threads",
    "timing",
)


class ConfigError(ValueError):
    """Config mistakes, phrased for the user: each names the key, the value and what is valid."""

    def __init__(self, *mistakes: str):
        self.mistakes = list(mistakes)
        super().__init__(combine(self.mistakes))


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle)


def key_path(path: Iterable[Any]) -> str:
    """Render a jsonschema path as the user wrote it: models[1].batch_sizes[0]."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]] | {
            k: v for k, v in schema.items() if k != "$ref"
        }
    return schema


def _describe(error: jsonschema.ValidationError, root: dict[str, Any]) -> str:
    """One sentence for one jsonschema error."""
    where = key_path(error.absolute_path)
    value = error.instance
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties":
        allowed = sorted(_resolve(schema, root).get("properties", {}))
        unknown = sorted(set(value) - set(allowed))
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        scope = "" if where == "(top level)" else f" in '{where}'"
        return f"unknown key {', '.join(hints)}{scope}; valid keys: {', '.join(allowed)}"
    if kind == "enum":
        return f"key '{where}': {value!r} is not valid; choose one of {', '.join(map(str, error.validator_value))}"
    if kind == "pattern":
        hint = schema.get("x-hint", f"must match {error.validator_value}")
        return f"key '{where}': {value!r} is not valid; {hint}"
    if kind == "type":
        return f"key '{where}': {value!r} has the wrong type; expected {error.validator_value}"
    if kind == "minItems":
        return f"key '{where}': the list is empty; give at least {error.validator_value} entry"
    if kind == "uniqueItems":
        seen, dupes = [], []
        for item in value:
            (dupes if item in seen else seen).append(item)
        return f"key '{where}': duplicate entries {dupes!r}; list each value once"
    if kind in ("minimum", "exclusiveMinimum"):
        op = ">=" if kind == "minimum" else ">"
        return f"key '{where}': {value!r} is too small; it must be {op} {error.validator_value}"
    if kind in ("maximum", "exclusiveMaximum"):
        op = "<=" if kind == "maximum" else "<"
        return f"key '{where}': {value!r} is too large; it must be {op} {error.validator_value}"
    if kind == "required":
        return f"missing key {error.message.split()[0]} in '{where}'"
    return f"key '{where}': {value!r}: {error.message}"


def _best_error(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The deepest, most specific error (inside anyOf, prefer the branch of the value's type)."""
    error = jsonschema.exceptions.best_match(errors)
    while error.context:
        same_type = [e for e in error.context if e.validator != "type"]
        error = jsonschema.exceptions.best_match(same_type or error.context)
    return error


def check_schema(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Raise ConfigError naming the key and value of every schema violation (its most specific
    form each)."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        raise ConfigError(*dict.fromkeys(_describe(_best_error([error]), schema) for error in errors))


def check_models(config: dict[str, Any], known_models: Iterable[str], cwd: Path | None = None) -> None:
    """Reject model names torchvision does not know, with close matches, and duplicates.

    Built-in transformers and factory entries are checked by speedatlas.plan.model_entries.
    """
    from speedatlas.plan import model_entries

    known = sorted(known_models)
    seen: set[str] = set()
    mistakes = []
    for index, entry in enumerate(config["models"]):
        name = entry if isinstance(entry, str) else entry["name"]
        try:
            model_entries.check_entry(entry, config, set(known), cwd or Path.cwd())
        except model_entries.EntryError as error:
            raise ConfigError(f"key 'models[{index}]': {error}") from None
        if model_entries.is_custom(entry):
            check_custom_axes(config, entry, index)
        elif name not in known:
            mistakes.append(_unknown_model(index, name, known))
        if name in seen:
            mistakes.append(f"key 'models[{index}]': model {name!r} is listed twice; list each model once")
        seen.add(name)
    if mistakes:
        raise ConfigError(*mistakes)


def _unknown_model(index: int, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else "see torchvision.models.list_models()"
    return f"key 'models[{index}]': unknown torchvision model {name!r}; {hint}"


def _check_model_names_early(config: dict[str, Any], known_models: Iterable[str]) -> None:
    """Names of torchvision models, checked beside the schema (so an unknown model and a schema
    mistake are reported together); factories and built-ins are checked once defaults are in."""
    from speedatlas.plan import model_entries

    models = config.get("models")
    if not isinstance(models, list):
        return
    known = sorted(known_models)
    mistakes = [
        _unknown_model(index, entry if isinstance(entry, str) else entry["name"], known)
        for index, entry in enumerate(models)
        if (isinstance(entry, str) or (isinstance(entry, dict) and isinstance(entry.get("name"), str)))
        and not model_entries.is_custom(entry)
        and (entry if isinstance(entry, str) else entry["name"]) not in known
    ]
    if mistakes:
        raise ConfigError(*mistakes)


def check_custom_axes(config: dict[str, Any], entry: Any, index: int) -> None:
    """channels_last is a memory format of 4-d image tensors: refuse it for token models; the
    mnist_epoch workload feeds MNIST images to torchvision models only."""
    from speedatlas.plan import model_entries

    name = entry if isinstance(entry, str) else entry["name"]
    own = isinstance(entry, dict) and "variants" in entry
    variants = entry["variants"] if own else config["variants"]
    if "channels_last" in variants and model_entries.model_input(entry, config)["kind"] == "tokens":
        where = f"models[{index}].variants" if own else "variants"
        raise ConfigError(
            f"key '{where}': channels_last applies to image models only, and {name!r} takes tokens; "
            f"give models[{index}] its own variants without channels_last"
        )
    if "mnist_epoch" in config["workload"]:
        raise ConfigError(
            f"key 'models[{index}]': workload mnist_epoch trains torchvision models on MNIST images; "
            f"{name!r} is not one (run it with workload synthetic)"
        )


def uses_mlx(config: dict[str, Any]) -> bool:
    """True when the study-wide or a model's own variants name an MLX variant."""
    from speedatlas.measure import mlx

    lists = [config.get("variants") or []] + [
        entry.get("variants") or [] for entry in config.get("models") or [] if isinstance(entry, dict)
    ]
    return any(mlx.is_mlx(variant) for variants in lists if isinstance(variants, list) for variant in variants)


def check_mlx_models(config: dict[str, Any]) -> None:
    """mlx/mlx_compile need an MLX port: torchvision's resnet18 and resnet50 and the built-in
    transformers; a factory (a user's model) stays torch-only."""
    from speedatlas.measure import mlx

    mistakes = []
    for index, entry in enumerate(config["models"]):
        own = isinstance(entry, dict) and "variants" in entry
        asked = [v for v in (entry["variants"] if own else config["variants"]) if mlx.is_mlx(v)]
        name = entry if isinstance(entry, str) else entry["name"]
        factory = isinstance(entry, dict) and "factory" in entry
        if not asked or (name in mlx.MODELS and not factory):
            continue
        where = f"models[{index}].variants" if own else "variants"
        what = "is your factory's model (factories stay torch-only)" if factory else "has no MLX port"
        mistakes.append(
            f"key '{where}': {', '.join(asked)} run(s) the same model in MLX, which exists for "
            f"{', '.join(mlx.MODELS)} only; {name!r} {what}; give models[{index}] its own variants without "
            f"{' and '.join(asked)}"
        )
    if mistakes:
        raise ConfigError(*mistakes)


def check_probe_model(config: dict[str, Any], known_models: Iterable[str]) -> None:
    """The dtype support probe's model must be one torchvision knows (when the probe is on)."""
    probe = config["dtype_support"]
    known = sorted(known_models)
    if probe["enabled"] and probe["model"] not in known:
        close = difflib.get_close_matches(probe["model"], known, n=5, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else "see torchvision.models.list_models()"
        raise ConfigError(f"key 'dtype_support.model': unknown torchvision model {probe['model']!r}; {hint}")


def check_semantics(config: dict[str, Any]) -> None:
    """Cross-key rules a JSON schema cannot state."""
    mistakes = gather([lambda: _check_baseline_device(config), lambda: check_workloads(config),
                       lambda: check_timing_blocks(config)], ConfigError)
    baseline_torch = config.get("baseline_torch")
    if baseline_torch is not None and baseline_torch not in config["torch_versions"]:
        mistakes.append(
            f"key 'baseline_torch': {baseline_torch!r} is not in torch_versions "
            f"{config['torch_versions']!r}; add it there or pick one of them"
        )
    if mistakes:
        raise ConfigError(*mistakes)


def check_timing_blocks(config: dict[str, Any]) -> None:
    """A timing block asks for the precision rule or for a fixed number of processes, not both;
    the rule's pilot fits in its budget."""
    blocks = [("timing", config["timing"])]
    blocks += [(f"timing_by_device.{device}", block) for device, block in config.get("timing_by_device", {}).items()]
    blocks += [(f"models[{i}].timing", entry["timing"]) for i, entry in enumerate(config["models"])
               if isinstance(entry, dict) and "timing" in entry]
    mistakes = []
    for where, block in blocks:
        if "processes" in block and block.get("precision") is not None:
            mistakes.append(f"key '{where}': gives both processes ({block['processes']}, a fixed count) and precision "
                            f"({block['precision']}, the rule that chooses the count); keep one, or set precision: null")
        if block.get("pilot_processes", 0) > block.get("max_processes", config["timing"]["max_processes"]):
            mistakes.append(f"key '{where}.pilot_processes': {block['pilot_processes']} is more than max_processes "
                            f"({block.get('max_processes', config['timing']['max_processes'])}); the pilot must fit in the budget")
    if mistakes:
        raise ConfigError(*mistakes)


def _check_baseline_device(config: dict[str, Any]) -> None:
    if config["baseline_device"] not in config["devices"]:
        raise ConfigError(
            f"key 'baseline_device': {config['baseline_device']!r} is not in devices "
            f"{config['devices']!r}; add it to devices or pick one of them"
        )


def check_launcher(config: dict[str, Any], platform: str | None = None) -> None:
    """`launcher: forkserver` is refused on macOS: the fork server forks after torch (and with
    it Objective-C and Metal) is initialised, which crashes or hangs on macOS (Python's own
    multiprocessing defaults to spawn there since 3.8 for this reason). `auto` never forks there."""
    platform = platform or sys.platform
    if config.get("launcher") == "forkserver" and platform == "darwin":
        raise ConfigError(
            "key 'launcher': forkserver cannot be used on macOS (forking a process that has "
            "initialised Metal/Objective-C crashes or hangs); use 'auto' or 'process'"
        )


def check_torch_versions(config: dict[str, Any]) -> None:
    """Refuse torch versions older than the runner supports (torch.device as a context, get_model)."""
    from speedatlas.plan.torch_envs import CURRENT, OLDEST_SUPPORTED, release

    lists = [("torch_versions", config["torch_versions"])] + [
        (f"models[{i}].torch_versions", entry["torch_versions"])
        for i, entry in enumerate(config["models"])
        if isinstance(entry, dict) and "torch_versions" in entry
    ]
    oldest = ".".join(map(str, OLDEST_SUPPORTED))
    mistakes = [
        f"key '{key}[{index}]': {version!r} is older than the oldest supported torch, {oldest}; use {oldest} or newer"
        for key, versions in lists
        for index, version in enumerate(versions)
        if version != CURRENT and release(version)[:2] < OLDEST_SUPPORTED
    ]
    if mistakes:
        raise ConfigError(*mistakes)
MNIST_CLASSES = 10


def check_workloads(config: dict[str, Any]) -> None:
    """The mnist_epoch workload trains on the ten MNIST digits: every head needs >= 10 classes."""
    if "mnist_epoch" not in config["workload"]:
        return
    for index, entry in enumerate(config["models"]):
        classes = entry.get("num_classes", config["num_classes"]) if isinstance(entry, dict) else config["num_classes"]
        if classes < MNIST_CLASSES:
            where = f"models[{index}].num_classes" if isinstance(entry, dict) and "num_classes" in entry else "num_classes"
            raise ConfigError(
                f"key '{where}': {classes!r} is too small for workload mnist_epoch; MNIST has "
                f"{MNIST_CLASSES} digit classes, so it must be >= {MNIST_CLASSES}"
            )


def fill_defaults(config: dict[str, Any], schema_path: Path = SCHEMA_PATH) -> None:
    """Every default from the schema, nested ones included, by snakemake's own validator.

    The schema is the single source of defaults: nothing here repeats one.
    """
    from snakemake.utils import validate

    validate(config, str(schema_path), set_default=True)


def prepare(
    raw: dict[str, Any], known_models: Iterable[str], schema: dict[str, Any] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """Validate `raw` and return a copy with every default filled in (from the schema).

    `cwd` is where relative factory files are looked up (the working directory, where the
    cells' jobs run).
    """
    schema = schema or load_schema()
    too_large = size_mistake(raw)  # before anything walks it: a YAML bomb is refused in milliseconds
    if too_large:
        raise ConfigError(too_large)
    known_models = list(known_models)
    config = copy.deepcopy(dict(raw))
    # every mistake at once: all schema violations and unknown model names, then (once the
    # config has its shape and defaults) every cross-key mistake
    mistakes = gather([lambda: check_schema(config, schema), lambda: _check_model_names_early(config, known_models)],
                      ConfigError)
    if mistakes:
        raise ConfigError(*mistakes)
    if uses_mlx(config):
        config.setdefault("mlx", {})  # its defaults come from the schema, like every other key's
    fill_defaults(config)
    if isinstance(config["workload"], str):
        config["workload"] = [config["workload"]]
    config.setdefault("baseline_torch", config["torch_versions"][0])
    config.setdefault("cross_machine_baselines", [f"{config['machine']}/{config['baseline_device']}"])
    config.setdefault("study", "default")  # the Snakefile names it from the config file; a caller may not
    config.setdefault("publish_name", config["study"])
    checks = [lambda: check_semantics(config), lambda: check_launcher(config), lambda: check_torch_versions(config),
              lambda: check_models(config, known_models, cwd), lambda: check_probe_model(config, known_models),
              lambda: check_mlx_models(config)]
    mistakes = gather(checks, ConfigError)
    if mistakes:
        raise ConfigError(*mistakes)
    return config


def default_study_name(configfiles: Iterable[str | os.PathLike[str]]) -> str:
    """The study's name where the config gives none: its (first) config file's name without the
    suffix, as a label (config/m1max.yaml -> m1max; characters a folder name should not hold
    become '-'); the embedded default study is 'default'."""
    import re

    files = list(configfiles)
    if not files:
        return "default"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(files[0]).stem).strip("-._")[:64]
    return name or "study"


def cache_dir() -> Path:
    """Per-user cache of speedatlas (XDG_CACHE_HOME or ~/.cache)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "speedatlas"


def torchvision_models(cache_dir: Path | None = None, write: bool = True) -> list[str]:
    """Classification models of the torchvision that runs snakemake.

    Importing torchvision costs seconds, paid on every snakemake start (and by every job on a
    cluster); the list only changes with torchvision's version, so it is cached per version. The
    cache is only an optimisation: an unreadable or damaged one is rebuilt, one that cannot be
    written is skipped (each said in one line), and `write=False` (a dry run) never writes it.
    """
    from importlib.metadata import version

    cache = Path(cache_dir) / f"torchvision-{version('torchvision')}-models.json" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            names = json.loads(cache.read_text())
            if isinstance(names, list) and names and all(isinstance(name, str) for name in names):
                return names
            problem = "it holds no model list"
        except (OSError, ValueError) as error:
            problem = f"{type(error).__name__}: {error}"
        print(f"speedatlas: the cached model list {cache} is unusable ({problem}); rebuilding it", file=sys.stderr)
    import torchvision

    names = sorted(torchvision.models.list_models(module=torchvision.models))
    if cache is not None and write:
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(names))
            os.replace(tmp, cache)
        except OSError as error:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            print(f"speedatlas: the model list could not be cached in {cache.parent} "
                  f"({error.strerror or error}); carrying on without the cache", file=sys.stderr)
    return names
