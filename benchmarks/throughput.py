"""Training throughput of the causal transformer in float32 and bfloat16, and its MFU.

For each precision policy: the jitted `make_train_step(softmax_cross_entropy, policy)` of a
`CausalLM` on random tokens, compiled once, run `--warmup` steps (excluded), then timed over
`--steps` steps ending in `block_until_ready`. Prints steps/s, tokens/s, the FLOPs of one
step (XLA's `compiled.cost_analysis()["flops"]` when available, else the 6 N tokens estimate
of Kaplan et al. 2020, Sec. 2.1, N = parameter count: the output says which), the achieved
FLOP/s and, on a device of the table below, the model FLOP utilisation MFU = achieved FLOP/s /
peak FLOP/s (Chowdhery et al. 2022, App. B). Any other device, the CPU included, is reported
as "peak unknown". Not a test: run it by hand.

  python benchmarks/throughput.py
  python benchmarks/throughput.py --d_model=512 --num_layers=8 --seq_len=512 --batch_size=32
"""

from __future__ import annotations

import time

import jax
import ml_collections
from absl import app, flags

from dl_theory.models.transformer import CausalLM
from dl_theory.optim import build_optimizer
from dl_theory.train.losses import softmax_cross_entropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_state
from dl_theory.train.step import make_train_step

_D_MODEL = flags.DEFINE_integer("d_model", 128, "Model width.")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", 2, "Transformer blocks.")
_NUM_HEADS = flags.DEFINE_integer("num_heads", 4, "Attention heads.")
_VOCAB = flags.DEFINE_integer("vocab_size", 128, "Vocabulary size (random tokens).")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 128, "Tokens per sequence.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Sequences per step.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps after compilation.")
_PRECISIONS = flags.DEFINE_list("precisions", ["float32", "bfloat16"], "Precision policies.")

# Dense (not structured-sparsity) peak FLOP/s, keyed by a substring of `device_kind`, from the
# vendor datasheets: NVIDIA A100 Tensor Core GPU datasheet (FP32 19.5 TF, BF16 Tensor Core
# 312 TF); NVIDIA H100 Tensor Core GPU datasheet (SXM: FP32 67 TF, BF16 1,979 TF with
# sparsity = 989.5 dense; PCIe: FP32 51 TF, BF16 1,513 TF sparse = 756.5 dense); NVIDIA V100
# datasheet (SXM2: FP32 15.7 TF; PCIe: 14 TF; no bfloat16 units); NVIDIA T4 datasheet (FP32
# 8.1 TF; no bfloat16 units); NVIDIA L4 datasheet (FP32 30.3 TF, BF16 242 TF sparse = 121
# dense). None: the device has no bfloat16 hardware, so no peak applies. Under JAX's default
# matmul precision a float32 dot may run on TF32 tensor cores (A100, H100, L4), so a float32
# MFU against the FP32 peak can exceed what the FP32 units alone allow.
_PEAKS: dict[str, dict[str, float | None]] = {
    "H100 PCIe": {"float32": 51e12, "bfloat16": 756.5e12},
    "H100": {"float32": 67e12, "bfloat16": 989.5e12},
    "A100": {"float32": 19.5e12, "bfloat16": 312e12},
    "V100-PCIE": {"float32": 14e12, "bfloat16": None},
    "V100": {"float32": 15.7e12, "bfloat16": None},
    "T4": {"float32": 8.1e12, "bfloat16": None},
    "L4": {"float32": 30.3e12, "bfloat16": 121e12},
}


def peak_flops(device: jax.Device, precision: str) -> float | None:
    """The table's peak for this GPU and precision; None for any device not in it (the CPU
    included) or without units for `precision`. Longer keys are tried first (H100 PCIe
    before H100)."""
    if device.platform != "gpu":
        return None
    kind = device.device_kind.upper()
    for key in sorted(_PEAKS, key=len, reverse=True):
        if key.upper() in kind:
            return _PEAKS[key].get(precision)
    return None


def step_flops(compiled, num_params: int, tokens: int) -> tuple[float, str]:
    """FLOPs of one compiled step and where the number comes from."""
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
        cost = cost[0] if cost else {}
    flops = (cost or {}).get("flops", 0.0)
    if flops and flops > 0:
        return float(flops), "XLA cost_analysis"
    return 6.0 * num_params * tokens, "6 N tokens estimate"


def measure(precision: str) -> dict:
    """Compiles and times the train step under `precision`; returns the measurements."""
    policy = get_policy(precision)
    model = CausalLM(vocab_size=_VOCAB.value, d_model=_D_MODEL.value, num_heads=_NUM_HEADS.value,
                     num_layers=_NUM_LAYERS.value, mlp_dim=4 * _D_MODEL.value,
                     max_len=_SEQ_LEN.value, **policy.model_dtypes())
    tokens = jax.random.randint(jax.random.PRNGKey(0), (_BATCH.value, _SEQ_LEN.value + 1), 0,
                                _VOCAB.value)
    batch = {"x": tokens[:, :-1], "y": tokens[:, 1:]}
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-3)))
    state = create_train_state(model, tx, batch["x"][:1], 0, loss_scale=make_loss_scale(policy))
    num_params = sum(p.size for p in jax.tree.leaves(state.params))
    start = time.perf_counter()
    compiled = jax.jit(make_train_step(softmax_cross_entropy, policy)).lower(
        state, batch).compile()
    compile_s = time.perf_counter() - start
    for _ in range(_WARMUP.value):
        state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    start = time.perf_counter()
    for _ in range(_STEPS.value):
        state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    seconds = time.perf_counter() - start
    flops, source = step_flops(compiled, num_params, _BATCH.value * _SEQ_LEN.value)
    steps_per_s = _STEPS.value / seconds
    return {"precision": precision, "params": num_params, "compile_s": compile_s,
            "steps_per_s": steps_per_s, "tokens_per_s": steps_per_s * tokens.shape[0]
            * _SEQ_LEN.value, "flops_per_step": flops, "flops_source": source,
            "flops_per_s": flops * steps_per_s, "loss": float(metrics["loss"])}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    device = jax.devices()[0]
    print(f"device: {device.device_kind} ({device.platform}, {jax.device_count()} visible); "
          f"CausalLM d_model={_D_MODEL.value} layers={_NUM_LAYERS.value} "
          f"heads={_NUM_HEADS.value} seq_len={_SEQ_LEN.value} batch={_BATCH.value}; "
          f"{_WARMUP.value} warm-up + {_STEPS.value} timed steps")
    results = {}
    for precision in _PRECISIONS.value:
        r = measure(precision)
        results[precision] = r
        peak = peak_flops(device, precision)
        mfu = f"MFU {r['flops_per_s'] / peak:.1%} of {peak / 1e12:g} TFLOP/s" if peak else (
            "MFU: peak unknown")
        print(f"{precision:9s} params {r['params']:,}  compile {r['compile_s']:.1f} s  "
              f"{r['steps_per_s']:.2f} steps/s  {r['tokens_per_s']:,.0f} tokens/s  "
              f"{r['flops_per_step'] / 1e9:.3f} GFLOP/step ({r['flops_source']})  "
              f"{r['flops_per_s'] / 1e9:.2f} GFLOP/s  {mfu}  final loss {r['loss']:.4f}")
    if "float32" in results and "bfloat16" in results:
        speedup = results["bfloat16"]["steps_per_s"] / results["float32"]["steps_per_s"]
        print(f"bfloat16 / float32 speed-up: {speedup:.2f}x")


if __name__ == "__main__":
    app.run(main)
