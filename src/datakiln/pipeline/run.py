"""Declarative pipelines: named stages, cached outputs, a run report (``kiln run``).

A pipeline is a list of stages (YAML or Python)::

    cache_dir: .kiln-cache         # optional; default $DATAKILN_CACHE_DIR or ~/.cache/datakiln
    cache_limit: 2GB               # optional, default 20GB (least recently used evicted)
    output_dir: adult-run          # optional; the run page and stage reports (default <file>.run)
    stages:
      - {name: read, stage: read, path: adult.csv, options: {header: false}}
      - {name: clean, stage: clean, input: read, config: {steps: [...]}}
      - {name: split, stage: split, input: clean, fractions: [0.8, 0.2], stratify: income}
      - {name: fit, stage: synth.fit, input: split.train}

``name`` defaults to the stage kind. An input names an earlier stage (``input: clean``, its
``data``) or one part of it (``split.train``). Relative paths are taken from the YAML file's
folder. Each stage's output is stored in the shared cache (:mod:`datakiln.dataset._cache_store`)
under :func:`datakiln.pipeline.keys.stage_key`; a stage whose key is already stored is
skipped. ``force`` recomputes the named stages and everything downstream of them; ``until``
stops after a stage; ``dry_run`` only plans. A failing stage raises :class:`StageError`
naming it; the outputs of the stages before it stay in the cache.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datakiln.errors import DatakilnError, InvalidArgumentError, SchemaError
from datakiln.pipeline.keys import read_fingerprint, stage_key
from datakiln.pipeline.stages import STAGES

__all__ = ["Pipeline", "RunReport", "StageError", "StageResult"]

_TOP = ("stages", "cache_dir", "cache_limit", "output_dir")
_REPORTS = ("report.html", "report.json", "preview.png")


class StageError(DatakilnError, RuntimeError):
    """A pipeline stage failed; ``stage`` names it (earlier outputs stay cached)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class StageResult:
    """One stage of a run: ``status`` is computed, cached, or (dry run) compute / cached."""

    name: str
    kind: str
    status: str
    key: str
    seconds: float = 0.0
    rows: int | None = None
    reports: dict[str, str] = field(default_factory=dict)


@dataclass
class RunReport:
    """A run: its stages in order, ``computed`` (how many ran), ``seconds``, ``page``."""

    stages: list[StageResult]
    seconds: float
    page: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def computed(self) -> int:
        return sum(s.status == "computed" for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [asdict(s) for s in self.stages], "seconds": self.seconds,
                "computed": self.computed, "page": self.page, "cache": self.cache}


def _parts(kind: str, settings: dict[str, Any]) -> set[str]:
    if kind == "split":
        names = settings.get("names")
        count = len(settings.get("fractions", (0.8, 0.1, 0.1)))
        return set(names or (("train", "test") if count == 2 else ("train", "validation", "test")))
    return {"model"} if kind == "synth.fit" else {"data"}


class Pipeline:
    """Named, cached stages run in order (see the module docstring).

    Parameters
    ----------
    stages : list of dict
        Each with ``stage`` (the kind) and optionally ``name``, plus the kind's settings.
    base : path, default "."
        Folder relative paths are taken from.
    cache_dir, cache_limit : optional
        The shared cache directory and its byte limit.
    output_dir : path, optional
        Where the run page, run.json and each stage's reports go (default ``<base>/pipeline.run``).
    """

    def __init__(self, stages: Sequence[dict[str, Any]], *, base: str | os.PathLike[str] = ".",
                 cache_dir: str | os.PathLike[str] | None = None, cache_limit: str | int | None = "20GB",
                 output_dir: str | os.PathLike[str] | None = None, where: str = "the pipeline") -> None:
        self.base = Path(base)
        self.cache_dir = None if cache_dir is None else self.base / Path(cache_dir).expanduser()
        self.cache_limit = cache_limit
        self.output_dir = self.base / (output_dir or "pipeline.run")
        self.where = where
        self.stages = self._validate(list(stages))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Read a pipeline file (paths in it are relative to its folder)."""
        import yaml

        file = Path(path)
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read the pipeline file {str(file)!r}: {exc}") from None
        except yaml.YAMLError as exc:
            raise SchemaError(f"{str(file)!r} is not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
            raise SchemaError(f"{str(file)!r}: expected a mapping with a 'stages' list")
        unknown = sorted(set(data) - set(_TOP))
        if unknown:
            raise SchemaError(f"{str(file)!r}: unknown top-level key(s) {unknown}; allowed: {list(_TOP)}")
        return cls(data["stages"], base=file.parent, cache_dir=data.get("cache_dir"),
                   cache_limit=data.get("cache_limit", "20GB"),
                   output_dir=data.get("output_dir") or f"{file.stem}.run", where=repr(str(file)))

    # -- validation ------------------------------------------------------------------------
    def _validate(self, stages: list[Any]) -> list[dict[str, Any]]:
        seen: dict[str, str] = {}
        checked = []
        for index, raw in enumerate(stages):
            if not isinstance(raw, dict) or "stage" not in raw:
                raise SchemaError(f"{self.where}: stage #{index + 1} must be a mapping with a 'stage' key "
                                  f"(one of {sorted(STAGES)}), got {raw!r}")
            kind = STAGES.get(raw["stage"])
            name = str(raw.get("name", raw["stage"]))
            if kind is None:
                raise SchemaError(f"{self.where}: stage {name!r} has unknown kind {raw['stage']!r}; "
                                  f"one of {sorted(STAGES)}")
            if name in seen:
                raise SchemaError(f"{self.where}: two stages are named {name!r}; give one a 'name'")
            settings = {k: v for k, v in raw.items() if k not in ("stage", "name")}
            unknown = sorted(set(settings) - set(kind.required) - set(kind.optional))
            missing = [k for k in kind.required if k not in settings]
            if unknown:
                raise SchemaError(f"{self.where}: stage {name!r} ({kind.name}) has unknown key(s) "
                                  f"{unknown}; allowed: {sorted(kind.required + kind.optional)}")
            if missing:
                raise SchemaError(f"{self.where}: stage {name!r} ({kind.name}) needs {missing}")
            for slot in kind.inputs:
                if slot in settings:
                    self._check_ref(name, slot, settings[slot], seen, checked)
            seen[name] = kind.name
            checked.append({"name": name, "kind": kind.name, "settings": settings})
        return checked

    def _check_ref(self, name: str, slot: str, ref: Any, seen: dict[str, str],
                   checked: list[dict[str, Any]]) -> None:
        source, _, part = str(ref).partition(".")
        if source not in seen:
            raise SchemaError(f"{self.where}: stage {name!r} key {slot!r} refers to {ref!r}, which is not "
                              f"an earlier stage; earlier: {list(seen) or 'none'}")
        upstream = next(s for s in checked if s["name"] == source)
        parts = _parts(upstream["kind"], upstream["settings"])
        default = "data" if "data" in parts else (next(iter(parts)) if len(parts) == 1 else "")
        if (part or default) not in parts:
            raise SchemaError(f"{self.where}: stage {name!r} key {slot!r}: stage {source!r} has parts "
                              f"{sorted(parts)}, write e.g. {source}.{sorted(parts)[0]}")

    # -- planning --------------------------------------------------------------------------
    def _store(self) -> Any:
        from datakiln.dataset._cache_store import CacheStore

        return CacheStore(self.cache_dir, self.cache_limit)

    def _ref(self, ref: Any) -> tuple[str, str]:
        source, _, part = str(ref).partition(".")
        if not part:
            kind = next(s["kind"] for s in self.stages if s["name"] == source)
            part = "model" if kind == "synth.fit" else "data"
        return source, part

    def _key(self, stage: dict[str, Any], keys: dict[str, str]) -> str:
        kind = STAGES[stage["kind"]]
        settings = {k: v for k, v in stage["settings"].items() if k not in kind.inputs}
        inputs = {}
        for slot in kind.inputs:
            if slot in stage["settings"]:
                source, part = self._ref(stage["settings"][slot])
                inputs[slot] = f"{keys[source]}.{part}"
        extra = ""
        if stage["kind"] == "read":
            extra = self._fingerprint(stage)
        return stage_key(stage["kind"], settings, inputs, extra)

    def _fingerprint(self, stage: dict[str, Any]) -> str:
        import datakiln

        settings = stage["settings"]
        path = str(self.base / Path(str(settings["path"])).expanduser())
        try:
            if settings.get("images"):
                dataset = datakiln.read_images(path, **dict(settings.get("options") or {}))
            else:
                dataset = datakiln.read(path, **dict(settings.get("options") or {}))
            return read_fingerprint(dataset)
        except DatakilnError as exc:
            raise StageError(stage["name"], f"stage {stage['name']!r} (read) failed: {exc}") from exc

    def plan(self, *, force: Sequence[str] = (), until: str | None = None) -> list[StageResult]:
        """What a run would do: each stage's key and whether it is cached or would compute."""
        names = [s["name"] for s in self.stages]
        for wanted in [*force, *([until] if until else [])]:
            if wanted not in names:
                raise InvalidArgumentError(f"no stage named {wanted!r} in {self.where}; stages: {names}")
        store = self._store()
        keys: dict[str, str] = {}
        dirty: set[str] = set()
        plan = []
        for stage in self.stages:
            key = keys[stage["name"]] = self._key(stage, keys)
            kind = STAGES[stage["kind"]]
            upstream = {self._ref(stage["settings"][s])[0] for s in kind.inputs if s in stage["settings"]}
            cached = store.contains(key) and not (upstream & dirty) and stage["name"] not in force
            if cached and stage["kind"] == "write":
                try:
                    meta = json.loads((store.entry_path(key) / "summary.json").read_text(encoding="utf-8"))
                    cached = Path(meta.get("path", "")).exists()
                except (OSError, ValueError):
                    cached = False
            if not cached:
                dirty.add(stage["name"])
            plan.append(StageResult(stage["name"], stage["kind"], "cached" if cached else "compute", key))
            if stage["name"] == until:
                break
        return plan

    # -- running ---------------------------------------------------------------------------
    def run(self, *, force: Sequence[str] = (), until: str | None = None, dry_run: bool = False,
            on_stage: Callable[[StageResult], None] | None = None) -> RunReport:
        """Run the stages (see the module docstring); returns the :class:`RunReport` and
        writes ``run.html`` / ``run.json`` into ``output_dir`` (not on a dry run)."""
        started = time.perf_counter()
        plan = self.plan(force=force, until=until)
        if dry_run:
            return RunReport(plan, time.perf_counter() - started)
        from datakiln.pipeline.page import own_folder, write_run_page

        own_folder(self.output_dir)  # before any stage: a write stage may put its file there
        store = self._store()
        entries: dict[str, Any] = {}
        by_name = {s["name"]: s for s in self.stages}
        try:
            for item in plan:
                began = time.perf_counter()
                stage = by_name[item.name]
                twin = next((n for n, e in entries.items() if e is not None and e.key == item.key), None)
                if twin is not None:  # an identical stage ran earlier in this run
                    entries[item.name] = store.open(item.key, count=False)
                elif item.status == "cached":
                    entries[item.name] = store.open(item.key)
                if entries.get(item.name) is None:
                    entries[item.name] = self._compute(stage, item.key, store, entries)
                    item.status = "computed"
                else:
                    item.status = "cached"
                entry = entries[item.name]
                summary = json.loads(entry.file("summary.json").read_text(encoding="utf-8"))
                item.rows = summary.get("rows")
                item.reports = {n: str(entry.file(n)) for n in _REPORTS if entry.file(n).exists()}
                item.seconds = time.perf_counter() - began
                if on_stage is not None:
                    on_stage(item)
            report = RunReport(plan, time.perf_counter() - started, cache=store.stats)
            report.page = str(write_run_page(report, self.output_dir))
            return report
        finally:
            for entry in entries.values():
                if entry is not None:
                    entry.close()

    def _inputs(self, stage: dict[str, Any], entries: dict[str, Any]) -> dict[str, Any]:
        import datakiln

        kind = STAGES[stage["kind"]]
        inputs: dict[str, Any] = {}
        for slot in kind.inputs:
            if slot in stage["settings"]:
                source, part = self._ref(stage["settings"][slot])
                entry = entries[source]
                if part == "model":
                    inputs[slot] = entry.file("model.kiln")
                else:
                    inputs[slot] = datakiln.read(entry.file(f"{part}.arrow"), format="arrow")
        return inputs

    def _compute(self, stage: dict[str, Any], key: str, store: Any, entries: dict[str, Any]) -> Any:
        name, kind = stage["name"], STAGES[stage["kind"]]
        try:
            with store.build(key, {"stage": name, "kind": kind.name}) as folder:
                summary = kind.run(self._inputs(stage, entries), stage["settings"], folder, self.base)
                (folder / "summary.json").write_text(json.dumps(summary, default=str), encoding="utf-8")
        except StageError:
            raise
        except Exception as exc:  # any failure is the stage's, named; earlier entries stay
            message = str(exc) if isinstance(exc, DatakilnError) else f"{type(exc).__name__}: {exc}"
            raise StageError(name, f"stage {name!r} ({kind.name}) failed: {message}; the outputs of "
                                   "the stages before it are kept in the cache") from exc
        entry = store.open(key, count=False)
        if entry is None:
            raise StageError(name, f"stage {name!r}: its output does not fit cache_limit="
                                   f"{self.cache_limit!r}; raise the limit")
        return entry
