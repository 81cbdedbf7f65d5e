"""Where the distilabel pipelines run: local worker processes (default) or a distilabel RayPipeline.

The executor is chosen by configuration, never by rewriting a step: a stage function decorated with
`on_configured_executor` (or a `use_executor(...)` block) sets it, and `run_persisted` asks
`current_executor()` for every pipeline it builds. distilabel and Ray are imported inside functions only.
On Ray the requested step resources are checked against the cluster first, because Ray waits forever for
an actor it cannot place (seen: `cpus=3` on a 2-CPU machine hangs with no error).
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator, Literal

from psychosafe.errors import PsychosafeError

ExecutorKind = Literal["local", "ray"]


@dataclass(frozen=True)
class Executor:
    kind: ExecutorKind = "local"
    ray_address: str | None = None  # None: start a local Ray; "auto" or "ray://host:10001": join a cluster
    llm_replicas: int = 1           # StepResources for every step that runs an LLM
    llm_cpus: int | None = None
    llm_gpus: int | None = None


# Executor is a frozen dataclass: the shared default cannot be changed in place
_CURRENT: ContextVar[Executor] = ContextVar("psychosafe_executor", default=Executor())  # noqa: B039


def current_executor() -> Executor:
    return _CURRENT.get()


@contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Run every pipeline built inside the block on `executor`."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)


def executor_from_config(config: Any) -> Executor:
    """The Executor a RebuildConfig asks for (its `executor`, `ray_address` and `llm_resources`)."""
    res = config.llm_resources
    return Executor(kind=config.executor, ray_address=config.ray_address, llm_replicas=res.replicas,
                    llm_cpus=res.cpus, llm_gpus=res.gpus)


def on_configured_executor(fn):
    """Decorator for a stage function `fn(config, ...)`: its pipelines run on the config's executor."""

    @functools.wraps(fn)
    def wrapper(config, *args, **kwargs):
        with use_executor(executor_from_config(config)):
            return fn(config, *args, **kwargs)

    return wrapper


def apply_llm_resources(pipeline: Any, executor: Executor, *, batches: int | None = None) -> None:
    """Give every LLM step of the pipeline the executor's replicas, CPUs and GPUs; locally, share the cores out
    between the processes that run a model on the CPU at the same time (`batches`: how many batches the pipeline's
    rows make, when known)."""
    from distilabel.constants import STEP_ATTR_NAME

    llm_steps = [step for step in (pipeline.dag.get_step(name)[STEP_ATTR_NAME] for name in pipeline.dag)
                 if getattr(step, "llm", None) is not None]
    for step in llm_steps:
        if executor.llm_replicas != 1:  # 1 is the default: leave a step's own choice alone
            step.resources.replicas = executor.llm_replicas
        if executor.llm_cpus is not None:
            step.resources.cpus = executor.llm_cpus
        if executor.llm_gpus is not None:
            step.resources.gpus = executor.llm_gpus
    if executor.kind == "local":
        share_cpu_threads([(step.llm, step.resources.replicas or 1) for step in llm_steps], batches=batches)


def share_cpu_threads(llms: list[tuple[Any, int]], *, batches: int | None = None) -> None:
    """Each in-process CPU model, (llm, replicas), gets an equal share of the cores per replica that can be busy at
    once. Every replica is a process of its own, and torch takes every core in each: two models on two cores then
    run four threads that keep evicting each other (benchmarks/results/threads.json; Ray does this sharing itself:
    a step's `cpus` become its threads). A process works only while it holds a batch, so no more of them than there
    are `batches` run at once: one batch passes from step to step alone, and each step then takes every core."""
    on_cpu = [(llm, n) for llm, n in llms if hasattr(llm, "torch_threads") and llm.torch_threads is None
              and str(getattr(llm, "device", "cpu") or "cpu").startswith("cpu")]
    processes = sum(n for _, n in on_cpu)
    if batches is not None:
        processes = min(processes, batches)
    if processes < 2:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for llm, _ in on_cpu:
        llm.torch_threads = max(1, cores // processes)


def requested_resources(pipeline: Any) -> dict[str, list[tuple[str, int, float]]]:
    """resource ('CPU', 'GPU', 'memory', custom) -> [(step, replicas, amount per replica)] held by steps.

    Steps that name no CPUs are Ray's default actors: they need a CPU to be scheduled but hold none
    while they run, so they never block others and are not counted.
    """
    from distilabel.constants import STEP_ATTR_NAME

    wanted: dict[str, list[tuple[str, int, float]]] = {}
    for name in pipeline.dag:
        step = pipeline.dag.get_step(name)[STEP_ATTR_NAME]
        res, replicas = step.resources, step.resources.replicas or 1
        llm = getattr(step, "llm", None)
        if llm is not None and type(llm).__name__ == "vLLM":
            # distilabel places an in-process vLLM in a placement group of tensor_parallel_size GPUs.
            tp = (getattr(llm, "extra_kwargs", None) or {}).get("tensor_parallel_size", 1)
            wanted.setdefault("GPU", []).append((name, replicas, float(tp)))
            continue
        for key, amount in (("CPU", res.cpus), ("GPU", res.gpus), ("memory", res.memory)):
            if amount:
                wanted.setdefault(key, []).append((name, replicas, float(amount)))
        for key, amount in (res.resources or {}).items():
            wanted.setdefault(key, []).append((name, replicas, float(amount)))
    return wanted


def check_ray_resources(pipeline: Any, nodes: list[dict]) -> None:
    """Fail with a clear error when the alive Ray nodes cannot hold every step at once (all steps of a
    distilabel pipeline run at the same time, each replica an actor that keeps its resources)."""
    from distilabel.constants import STEP_ATTR_NAME

    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    # A step that names no CPUs holds none while it runs, but Ray places it only where a CPU is free: if the
    # named ones take every CPU, it waits forever. Keep one free for them.
    unnamed = [name for name in pipeline.dag if pipeline.dag.get_step(name)[STEP_ATTR_NAME].resources.cpus is None]
    problems = []
    for key, asks in requested_resources(pipeline).items():
        total = sum(node.get(key, 0) for node in alive)
        biggest = max((node.get(key, 0) for node in alive), default=0)
        need = sum(replicas * amount for _, replicas, amount in asks)
        detail = ", ".join(f"{step}: {replicas} x {amount:g}" for step, replicas, amount in asks)
        if key == "CPU" and unnamed and need + 1 > total:
            problems.append(f"CPU: the steps ask for {need:g} in all ({detail}) and the cluster has {total:g}, which "
                            f"leaves no CPU to place the steps that name none ({', '.join(unnamed)})")
        elif need > total:
            problems.append(f"{key}: the steps ask for {need:g} in all ({detail}) but the cluster has {total:g}")
        elif any(amount > biggest for _, _, amount in asks):
            problems.append(f"{key}: a replica asks for more than the largest node has ({biggest:g}): {detail}")
    if problems:
        raise PsychosafeError(
            "the Ray cluster cannot place this pipeline (Ray would wait forever): " + "; ".join(problems)
            + ". Lower llm_resources (replicas, cpus, gpus) in the config, or add nodes to the cluster.")


def pin_to_driver_node(pipeline: Any, node_resource: str) -> None:
    """Steps that write into the run folder (class attribute `runs_on_driver_node`) must run on the node of
    the process that reads it back, not on any node of the cluster: Ray's per-node resource `node:<ip>`
    places them there."""
    from distilabel.constants import STEP_ATTR_NAME

    for name in pipeline.dag:
        step = pipeline.dag.get_step(name)[STEP_ATTR_NAME]
        if getattr(type(step), "runs_on_driver_node", False):
            step.resources.resources = {**(step.resources.resources or {}), node_resource: 1}


def ray_pipeline(pipeline: Any, executor: Executor) -> Any:
    """The same pipeline as a distilabel RayPipeline, on a Ray we start (or join) and check first."""
    try:
        import ray
    except ImportError:
        raise PsychosafeError("executor 'ray' needs Ray: pip install 'psychosafe[ray]'") from None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": False}
        if executor.ray_address:
            kwargs["address"] = executor.ray_address
        else:
            kwargs["include_dashboard"] = False  # a dashboard per local run is wasted memory
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise PsychosafeError(f"ray_address {executor.ray_address}: no Ray cluster answers there ({exc})") from None
    pin_to_driver_node(pipeline, f"node:{ray.util.get_node_ip_address()}")
    try:
        check_ray_resources(pipeline, ray.nodes())
    except PsychosafeError:
        shutdown_ray()
        raise
    # Ray is initialised here, so distilabel's own ray.init is skipped and our settings hold.
    return pipeline.ray()


def shutdown_ray() -> None:
    """Disconnect from Ray (and stop a local one) so the next pipeline starts from a clean slate: distilabel
    names its queue actors after the pipeline, and a second run in the same Ray session would clash."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
