"""The Ray executor: resources checked against the cluster before Ray can hang, and a rebuild on a local
Ray that gives the same records as the local executor."""

import json
from pathlib import Path

import datasets
import pytest
from distilabel.pipeline import Pipeline
from distilabel.steps import KeepColumns, LoadDataFromDicts, StepResources

from psychosafe.app.rebuild import rebuild
from psychosafe.core.backends import build_llm
from psychosafe.core.config import LLMConfig, load_rebuild_config
from psychosafe.core.executors import (
    Executor,
    apply_llm_resources,
    check_ray_resources,
    current_executor,
    executor_from_config,
    use_executor,
)
from psychosafe.errors import PsychosafeError
from psychosafe.pipelines import PsychoSafeResponse
from psychosafe.pipelines.tasks import GenericRefusal

REPO = Path(__file__).resolve().parent.parent


def two_step_pipeline(llm_cpus=None, llm_replicas=1, other_cpus=None):
    with Pipeline(name="resources") as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"prompt": "hi"}])
        respond = PsychoSafeResponse(name="respond", llm=build_llm(LLMConfig()),
                                     resources=StepResources(cpus=llm_cpus, replicas=llm_replicas))
        keep = KeepColumns(name="keep", columns=["prompt"], resources=StepResources(cpus=other_cpus))
        load >> respond >> keep
    return pipeline


def node(cpus, gpus=0, alive=True):
    return {"Alive": alive, "Resources": {"CPU": cpus, "GPU": gpus, "memory": 8e9}}


def test_a_step_asking_for_more_cpus_than_the_cluster_fails_naming_it():
    with pytest.raises(PsychosafeError) as err:
        check_ray_resources(two_step_pipeline(llm_cpus=3), [node(2)])
    message = str(err.value)
    assert "CPU: the steps ask for 3 in all (respond: 1 x 3) and the cluster has 2" in message
    assert "llm_resources" in message


def test_steps_that_fit_one_by_one_but_not_together_fail():
    with pytest.raises(PsychosafeError, match=r"ask for 4 in all \(respond: 2 x 1, keep: 1 x 2\)"):
        check_ray_resources(two_step_pipeline(llm_cpus=1, llm_replicas=2, other_cpus=2), [node(2), node(1)])


def test_a_replica_bigger_than_any_node_fails_even_if_the_total_fits():
    with pytest.raises(PsychosafeError, match="more than the largest node has"):
        check_ray_resources(two_step_pipeline(llm_cpus=3), [node(2), node(2)])


def test_dead_nodes_do_not_count_and_default_steps_ask_for_nothing():
    check_ray_resources(two_step_pipeline(), [node(0)])  # no step names CPUs: nothing to check
    check_ray_resources(two_step_pipeline(llm_cpus=2), [node(3)])
    with pytest.raises(PsychosafeError, match="cluster has 2"):
        check_ray_resources(two_step_pipeline(llm_cpus=4), [node(2), node(8, alive=False)])


def test_named_cpus_must_leave_one_free_for_the_steps_that_name_none():
    # 2 named CPUs on a 2-CPU node: the load and keep steps (no CPUs named) could never be placed.
    with pytest.raises(PsychosafeError, match=r"leaves no CPU to place the steps that name none \(load, keep\)"):
        check_ray_resources(two_step_pipeline(llm_cpus=2), [node(2)])
    check_ray_resources(two_step_pipeline(llm_cpus=1), [node(2)])


def test_gpus_are_checked_like_cpus():
    pipeline = two_step_pipeline()
    apply_llm_resources(pipeline, Executor(llm_replicas=4, llm_gpus=1))
    check_ray_resources(pipeline, [node(16, gpus=4)])
    with pytest.raises(PsychosafeError,
                       match=r"GPU: the steps ask for 4 in all \(respond: 4 x 1\) but the cluster has 2"):
        check_ray_resources(pipeline, [node(16, gpus=2)])


def test_llm_resources_go_to_llm_steps_only():
    pipeline = two_step_pipeline()
    apply_llm_resources(pipeline, Executor(llm_replicas=2, llm_cpus=1))
    step = lambda name: pipeline.dag.get_step(name)["step"]  # noqa: E731
    assert (step("respond").resources.replicas, step("respond").resources.cpus) == (2, 1)
    assert (step("keep").resources.replicas, step("keep").resources.cpus) == (1, None)


def _two_model_pipeline():
    with Pipeline(name="two-models") as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"prompt": "hi"}])
        respond = PsychoSafeResponse(name="respond", llm=build_llm(LLMConfig()))
        baseline = GenericRefusal(name="baseline", llm=build_llm(LLMConfig()))
        load >> respond >> baseline
    return pipeline


def _threads(pipeline):
    return [pipeline.dag.get_step(name)["step"].llm.torch_threads for name in ("respond", "baseline")]


def test_local_cpu_models_of_one_pipeline_share_the_cores(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4}, raising=False)
    pipeline = _two_model_pipeline()
    apply_llm_resources(pipeline, Executor())
    assert _threads(pipeline) == [2, 2]  # 5 cores, 2 models: 2 threads each, never more than the cores
    alone = two_step_pipeline()  # one model keeps torch's default of every core
    apply_llm_resources(alone, Executor())
    assert alone.dag.get_step("respond")["step"].llm.torch_threads is None
    replicated = two_step_pipeline()  # ... unless it runs as several processes
    apply_llm_resources(replicated, Executor(llm_replicas=3))
    assert replicated.dag.get_step("respond")["step"].llm.torch_threads == 1
    on_ray = _two_model_pipeline()  # Ray gives a step the threads of its `cpus`
    apply_llm_resources(on_ray, Executor(kind="ray"))
    assert _threads(on_ray) == [None, None]


def test_a_single_batch_leaves_every_core_to_each_model(monkeypatch):
    """One batch goes from step to step alone: the two models never run at once, so neither is held to a share."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    single = _two_model_pipeline()
    apply_llm_resources(single, Executor(), batches=1)
    assert _threads(single) == [None, None]
    several = _two_model_pipeline()
    apply_llm_resources(several, Executor(), batches=2)
    assert _threads(several) == [2, 2]


def test_the_config_chooses_the_executor(write):
    path = write("ray.yaml", "executor: ray\nray_address: auto\nllm_resources: {replicas: 2, gpus: 1}\n")
    executor = executor_from_config(load_rebuild_config(path))
    assert executor == Executor(kind="ray", ray_address="auto", llm_replicas=2, llm_gpus=1)
    assert current_executor().kind == "local"
    with use_executor(executor):
        assert current_executor() is executor
    assert current_executor().kind == "local"


def test_a_bad_executor_in_the_config_names_the_field(write):
    with pytest.raises(PsychosafeError, match=r"executor.*'local' or 'ray'"):
        load_rebuild_config(write("bad.yaml", "executor: slurm\n"))


@pytest.mark.slow
def test_rebuild_on_a_local_ray_gives_the_records_of_the_local_executor(write, tmp_path):
    # Greedy decoding, so both executors must write the same text (Ray actors run one torch thread, local
    # workers two: greedy argmax does not notice the rounding of a different reduction order).
    path = write("tiny.yaml",
                 "name: tiny\nseed: 5\ntarget: 4\nbenign_fraction: 0.25\n"
                 "generator: {backend: embedded, max_new_tokens: 16, temperature: 0, batch_size: 4, seed: 5}\n"
                 "synthesis: {synthetic_fraction: 0}\ncritique: {max_rounds: 0}\nretries: 0\non_unjudged: keep\n"
                 "judges: [{backend: embedded, max_new_tokens: 8, temperature: 0, batch_size: 4}]\n"
                 "curation: {on_refusal_mismatch: flag, splits: {validation_per_domain: 0, test_per_domain: 0}}\n")
    local = rebuild(load_rebuild_config(path), tmp_path / "local", progress=False)
    on_ray = rebuild(load_rebuild_config(path, executor="ray"), tmp_path / "ray", progress=False)
    rows = lambda run: sorted(datasets.load_from_disk(str(run.synthesized / "dataset")).to_list(),  # noqa: E731
                              key=lambda r: r["id"])
    assert len(rows(local)) == 4
    assert rows(on_ray) == rows(local)
    assert json.loads((on_ray.path / "manifest.json").read_text())["config"]["executor"] == "ray"


def test_the_documented_multi_gpu_config_fits_two_8_gpu_nodes_and_not_one():
    from distilabel.models import vLLM  # constructed, not loaded: vllm itself need not be installed

    config = load_rebuild_config(REPO / "configs" / "ray-multi-gpu.yaml")
    assert (config.executor, config.ray_address, config.generator.backend) == ("ray", "auto", "vllm")
    with Pipeline(name="multi-gpu") as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"prompt": "hi"}])
        load >> PsychoSafeResponse(name="respond", llm=vLLM(model=config.generator.model, dtype="bfloat16"))
    apply_llm_resources(pipeline, executor_from_config(config))
    check_ray_resources(pipeline, [node(64, gpus=8), node(64, gpus=8)])
    with pytest.raises(PsychosafeError,
                       match=r"GPU: the steps ask for 16 in all \(respond: 16 x 1\) but the cluster has 8"):
        check_ray_resources(pipeline, [node(64, gpus=8)])


def test_the_vllm_server_config_points_the_openai_backend_at_the_script_default():
    config = load_rebuild_config(REPO / "configs" / "vllm-server.yaml")
    assert (config.generator.backend, config.generator.model) == ("openai", "SmolLM2-135M-Instruct")
    assert config.generator.base_url.startswith("http://127.0.0.1:")


def test_the_step_writing_the_run_folder_is_pinned_to_the_driver_node(tmp_path):
    from psychosafe.core.executors import pin_to_driver_node
    from psychosafe.pipelines.persist import PersistBatches

    with Pipeline(name="pinned") as pipeline:
        LoadDataFromDicts(name="load", data=[{"id": "a"}]) >> PersistBatches(name="persist", out_dir=str(tmp_path))
    pin_to_driver_node(pipeline, "node:10.0.0.1")
    assert pipeline.dag.get_step("persist")["step"].resources.resources == {"node:10.0.0.1": 1}
    assert pipeline.dag.get_step("load")["step"].resources.resources is None
    here = {"Alive": True, "Resources": {"CPU": 2, "node:10.0.0.1": 1.0}}
    check_ray_resources(pipeline, [here, node(8)])
    with pytest.raises(PsychosafeError, match=r"node:10.0.0.1: the steps ask for 1 in all \(persist: 1 x 1\)"):
        check_ray_resources(pipeline, [node(8)])
