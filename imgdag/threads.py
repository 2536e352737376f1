"""The CPU threads a script uses: exactly the count its rule gives it, and idle threads sleep.

Why 2 threads lost ~7x to 1 with other jobs on the box: torch's intra-op pool is OpenMP
(libgomp), whose idle threads busy-wait (spin) before sleeping. When another process holds a
core, a spinning thread burns the time slice that the thread it waits for needs, and every
barrier of every small op costs a scheduler quantum. `OMP_WAIT_POLICY=PASSIVE` makes idle
threads sleep at once. libgomp reads it once, when torch is loaded, so a script imports this
module before torch (or anything that imports torch); a value set by the user is kept.

`split_threads(total, workers)` splits one budget between torch's threads and loader worker
processes (which decode with one thread each), so a rule's `threads` is the process tree's total.
Scripts that run a network fix their torch thread count instead (params.yaml
compute.torch_threads, `--torch-threads`), since float sums depend on it: the same run gives
the same weights, features and metrics on any core count.

The CPU's vector instructions change float results too: torch's own kernels (ATen), oneDNN
(convolutions) and MKL (matrix products) each pick the widest the CPU has, and sum in another
order with it. `--cpu-isa` (params.yaml compute.cpu_isa) pins ATen and oneDNN to one level and
MKL to its vendor-neutral branch, so the same run gives the same bytes on any x86-64 CPU that
has the level; the pin overrides the host's ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and
MKL_CBWR. Each library reads its variable once, before its first use, so this module reads
`--cpu-isa` from the command line when it is imported (before torch).
"""
import argparse
import os
import sys

from imgdag.faults import stop_with_snakemake

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# compute.cpu_isa -> ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA; host: no pin. MKL's code branch
# is COMPATIBLE at every level: its other branches are defined on Intel CPUs only (elsewhere
# MKL quietly takes its own), so it is the one that sums alike on every vendor's CPU.
CPU_ISAS = {"sse41": ("default", "SSE41"), "avx2": ("avx2", "AVX2"),
            "avx512": ("avx512", "AVX512_CORE"), "host": None}
DEFAULT_CPU_ISA = "avx2"


def pin_cpu_isa(level: str) -> None:
    """Set the kernel-choice variables of `level` (a CPU_ISAS key), whatever the host set."""
    if CPU_ISAS[level]:
        aten, onednn = CPU_ISAS[level]
        os.environ.update(ATEN_CPU_CAPABILITY=aten, ONEDNN_MAX_CPU_ISA=onednn, MKL_CBWR="COMPATIBLE")


def add_cpu_isa_argument(parser: argparse.ArgumentParser) -> None:
    """--cpu-isa (compute.cpu_isa) of a script that runs a network; read when this module loads."""
    parser.add_argument("--cpu-isa", choices=CPU_ISAS, default=DEFAULT_CPU_ISA,
                        help="vector instructions torch, oneDNN and MKL may use (params.yaml "
                             "compute.cpu_isa); results depend on it; host: the CPU's widest, unpinned")


def _argv_cpu_isa() -> str:
    """--cpu-isa of this process's command line (before argparse proper runs)."""
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_cpu_isa_argument(early)
    return early.parse_known_args(sys.argv[1:])[0].cpu_isa


CPU_ISA = _argv_cpu_isa()
pin_cpu_isa(CPU_ISA)


def check_cpu_isa() -> None:
    """Stop with one line when torch does not run at the pinned level: a CPU without it (torch
    would quietly take a lower one, and other results), or torch ran before this module loaded.
    The level is the command line's now (a script run in a process that loaded this module
    earlier, as a test does, is checked against its own --cpu-isa)."""
    import torch

    level = _argv_cpu_isa()
    if level != "host" and torch.backends.cpu.get_cpu_capability() != CPU_ISAS[level][0].upper():
        sys.exit(f"compute.cpu_isa {level}: torch runs at {torch.backends.cpu.get_cpu_capability()} "
                 "(this CPU lacks it, or torch ran before imgdag.threads loaded); choose a level "
                 "this CPU has (results differ from other levels')")


def split_threads(total: int, workers: int | None = None,
                  torch_threads: int | None = None) -> tuple[int, int]:
    """(torch threads, loader workers) that together use `total` cores: by default one worker
    fewer than the total (the main process needs a core for the model); at least one thread.
    A fixed `torch_threads` (float sums, and so results, depend on it) is kept whatever the
    total, oversubscribing a smaller one; the workers get the rest by default."""
    if total < 1:
        raise ValueError(f"threads must be at least 1, got {total}")
    if torch_threads is not None:
        return torch_threads, max(total - torch_threads, 0) if workers is None else workers
    if workers is None:
        workers = total - 1
    return max(1, total - workers), workers


def torch_thread_count(text: str) -> int | None:
    """argparse type of --torch-threads: a count of at least 1, or auto (None)."""
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a count of at least 1 or auto, got {text!r}")
    return int(text)


def add_thread_arguments(parser: argparse.ArgumentParser) -> None:
    """--threads (the rule's cores), --torch-threads (compute.torch_threads) and --cpu-isa
    (compute.cpu_isa) of a script that runs a network."""
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU cores in all: torch threads plus loader workers (0: every core)")
    parser.add_argument("--torch-threads", type=torch_thread_count, default=None,
                        help="torch's CPU threads whatever --threads (params.yaml compute.torch_threads); "
                             "float sums, and so results, depend on it; "
                             "default (auto): --threads less the loader workers")
    add_cpu_isa_argument(parser)


def start_threads(args: argparse.Namespace, workers: int | None = None) -> tuple[int, int]:
    """(torch threads, loader workers) of --threads and --torch-threads (split_threads), in use;
    one line says when a fixed torch count oversubscribes the cores."""
    cores = args.threads or os.cpu_count()
    threads, workers = split_threads(cores, workers, args.torch_threads)
    if args.torch_threads and threads + workers > cores:
        print(f"{threads} torch threads (compute.torch_threads) and {workers} loader workers on "
              f"{cores} core(s): oversubscribed, for the same results as on more cores")
    use_threads(threads)
    return threads, workers


def use_threads(total: int) -> None:
    """Run torch on `total` intra-op threads and one inter-op thread; child processes
    (loader workers, MKL, OpenMP) inherit the count through the environment."""
    import torch

    check_cpu_isa()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(total)
    torch.set_num_threads(total)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # the inter-op pool already ran work in this process
            pass


# Imported first by every script that loads torch: the watch for a gone Snakemake (or dvc)
# starts here, before torch's seconds of loading, so a job orphaned during start-up ends too.
stop_with_snakemake()
