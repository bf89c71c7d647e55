"""``tao-scaffold verify``: run a generated port end to end and enforce parity gates.

    tao-scaffold verify --workspace WS --name NAME [--runner local|docker] [--device cpu|gpu]
                        [--stages a,b,...] [--data DIR] [--report OUT]

Modules:

* ``cli`` -- the ``verify`` subcommand (registered by ``scaffolder.cli``).
* ``pipeline`` -- preflight, stage scheduling (dependencies, ``--jobs``), the report and the summary.
* ``stages/`` -- one module per concern: ``static``, ``checks`` (consistency, imports, l0), ``pytorch``
  (train, export + ONNX parity, deploy-preprocess), ``trt`` (gen_trt_engine, trt_inference, trt_evaluate,
  trt_parity); ``base`` holds the Stage/StageRun framework.
* ``consistency_rules`` / ``specs`` -- the cross-phase rules, read from the files (YAML + ``ast``).
* ``tasks/`` -- the per-task part (data format, overrides, preprocessing check, output checks):
  ``classification`` implemented; detection/segmentation add a ``TaskSupport`` subclass.
* ``runner`` (interface), ``runner_local`` (subprocesses + throwaway console-script venv), ``runner_docker``
  (TAO containers through ``docker_runner.DockerSession``).
* ``probes/`` -- scripts run *inside* the target environment (import check, ONNX parity, preprocessing,
  TensorRT check/parity, versions); ``shim/sitecustomize.py`` -- the CPU-forcing shim for ``--device cpu`` and, on every device,
  TAO's MSDA without its CUDA op library (``shim/tao_scaffold_msda.py``).
* ``progress`` (live stage list), ``report`` (report.json / report.md), ``model`` (shared dataclasses),
  ``context`` (what a stage gets), ``port`` (where a port's files are).
"""
