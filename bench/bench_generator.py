"""PWM generator: parameters, GFLOPs per frame, forward time (CPU fp32; CUDA bf16 at batch 32).

Architecture of the authors' release (6 levels, shrink 0.5, 256²) for each guidance.
Usage: python bench/bench_generator.py [--device cpu|cuda] [--variants geom_disp,neural_codes,both]
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import machine, timeit

H100_BF16_DENSE_TFLOPS = 989.4  # NVIDIA H100 SXM datasheet, dense (no sparsity)


def inputs(guidance: str, b: int, device, dtype=torch.float32):
    n = 256
    disp = torch.randn(b, 2, n, n, device=device, dtype=dtype) * 0.02 if guidance != "neural_codes" else None
    codes = (torch.rand(b, 16, n, n, device=device, dtype=dtype), torch.rand(b, 16, n, n, device=device, dtype=dtype)) \
        if guidance != "geom_disp" else (None, None)
    return torch.rand(b, 3, n, n, device=device, dtype=dtype), disp, *codes


def gflops_per_frame(gen, guidance: str) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        gen(*inputs(guidance, 1, "cpu"))
    return counter.get_total_flops() / 1e9


def main() -> None:
    from reenact.models.generator import PWMGenerator

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variants", default="geom_disp,neural_codes,both")
    ap.add_argument("--batch", type=int, default=32, help="CUDA batch")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    for guidance in args.variants.split(","):
        gen = PWMGenerator(guidance, n_vertices=5023 if guidance != "geom_disp" else None, warp="official").eval()
        params = sum(p.numel() for p in gen.parameters())
        gf = gflops_per_frame(gen, guidance)
        line = f"{guidance:13s} params {params:,}  GFLOPs/frame {gf:.1f}"
        if args.device == "cpu":
            for b in (1, 8):
                x = inputs(guidance, b, "cpu")
                with torch.no_grad():
                    t = timeit(lambda: gen(*x), repeat=3, warmup=1)
                line += f"  | CPU fp32 batch {b}: {1000 * t / b:.0f} ms/frame"
        else:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            gen = gen.to(args.device)
            x = inputs(guidance, args.batch, args.device)
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                t = timeit(lambda: gen(*x), repeat=10, warmup=3, sync=torch.cuda.synchronize)
            tflops = gf * args.batch / t / 1000
            line += (f"  | CUDA bf16 batch {args.batch}: {1000 * t / args.batch:.2f} ms/frame, {tflops:.0f} TFLOP/s = "
                     f"{100 * tflops / H100_BF16_DENSE_TFLOPS:.1f}% of the H100's {H100_BF16_DENSE_TFLOPS} dense bf16 peak")
        print(line, flush=True)


if __name__ == "__main__":
    main()
