"""Cluster-scale planning: NeMo RL config generation, arithmetic and memory checks, GPU-hour estimates.

* :mod:`rubricrl.cluster.nemo_rl`: NeMo RL GRPO configs generated from the experiment config
  (``scale=paper``) and the cluster recipes (parallel layouts);
* :mod:`rubricrl.cluster.arithmetic`: the divisibility and batch rules NeMo RL, Megatron and vLLM enforce;
* :mod:`rubricrl.cluster.memory`: model dimensions and a per-GPU memory estimate;
* :mod:`rubricrl.cluster.throughput`: ``estimate_gpu_hours(config) -> (hours, basis_text)``.
"""
