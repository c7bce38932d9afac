"""Per-process peak memory of a segmentor's training step: FSDP vs DDP, same model, batch, ranks.

    python tools/benchmark_sharded.py                      # the ViT-L/16 UperNet FSDP config, 2 ranks
    python tools/benchmark_sharded.py --config configs/vitpyramid/upernet_vit-g14-dinov2_fsdp-16xb1-160k_ade20k-512x512.py \\
        --procs 2 --size 512 512 --json sharded.json
    python tools/benchmark_sharded.py --depth 4 --size 64 64   # a quick check of the tool itself

Each strategy runs in its own ``torchrun`` launch of this file (``--worker``), one after the other:
every rank builds the config's segmentor (``pretrained=False``), wraps it (DDP: mmengine's
``MMDistributedDataParallel``; FSDP: the config's ``strategy.model_wrapper``, i.e. vitadapter's
``TrunkBlockFSDP``), builds the config's optimizer (AdamW with layer decay), runs one training step
(which creates the AdamW state), resets the peak counter and runs a second one. Both strategies
checkpoint the trunk's blocks (DDP through the trunk's ``grad_checkpointing``) and compute in float32
(``--bf16`` gives FSDP its configured bf16 instead), so the ratio isolates the sharding.

Memory: on a CPU the kernel's resident set (``VmHWM`` after ``clear_refs``, as ``tools/benchmark.py
--memory``), minus the resident set before the model was built, the largest over the ranks; on
GPUs torch's allocator peak. Printed: one row per strategy, then ``fsdp / ddp``, with the machine.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CONFIG = os.path.join(ROOT, 'configs', 'vitpyramid',
                              'upernet_vit-l16-augreg_fsdp-16xb1-160k_ade20k-512x512.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default=DEFAULT_CONFIG, help='a segmentor config with an FSDP strategy')
    p.add_argument('--procs', type=int, default=2, help='processes (ranks) per strategy')
    p.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    p.add_argument('--batch', type=int, default=1, help='images per rank')
    p.add_argument('--depth', type=int, default=None, help='cut the trunk to this many blocks (>= 4)')
    p.add_argument('--strategies', nargs='+', default=['fsdp', 'ddp'], choices=['fsdp', 'ddp'])
    p.add_argument('--bf16', action='store_true', help="FSDP with the config's bf16 mixed precision")
    p.add_argument('--threads', type=int, default=1, help='torch threads per rank')
    p.add_argument('--port', type=int, default=29530)
    p.add_argument('--json', help='write the rows here')
    p.add_argument('--worker', choices=['fsdp', 'ddp'], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def worker(args):
    """One rank of one strategy: build, wrap, two training steps; rank 0 prints the JSON row."""
    import torch
    import torch.distributed as dist
    torch.set_num_threads(args.threads)
    import vitadapter.engine  # noqa: F401  (registers the backbones, heads, wrapper)
    from mmengine.config import Config
    from mmengine.model.wrappers import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODEL_WRAPPERS, init_default_scope
    from mmseg.registry import MODELS
    from vitadapter.engine import prepare_config
    from benchmarking.machine import describe, machine_record
    from benchmarking.memory import status_kib
    from benchmarking.segmentors import segmentor_batch

    cuda = torch.cuda.is_available()
    cfg = Config.fromfile(args.config)
    cfg.model.backbone.pretrained = False
    cfg.model.data_preprocessor.size = tuple(args.size)
    if args.depth:
        cfg.model.backbone.update(depth=args.depth, out_indices=list(range(args.depth))[-4:])
    if cuda:
        torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
        dist.init_process_group('nccl')
    prepare_config(cfg, launcher='pytorch')  # without a GPU: gloo, CPU-synchronised BN
    rank = dist.get_rank()
    init_default_scope('mmseg')
    baseline = torch.cuda.memory_allocated() if cuda else status_kib('VmRSS')
    if args.worker == 'ddp':
        cfg.model.backbone.grad_checkpointing = True
        model = MODELS.build(cfg.model)
        model.init_weights()
        if cuda:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model.cuda())
        model = MMDistributedDataParallel(module=model, device_ids=[torch.cuda.current_device()]
                                          if cuda else None, broadcast_buffers=False)
    else:
        model = MODELS.build(cfg.model)
        model.init_weights()
        wrapper = cfg.strategy.model_wrapper.copy()
        if not args.bf16:
            wrapper.mixed_precision = None
        model = MODEL_WRAPPERS.build(wrapper, default_args=dict(
            module=model, device_id=int(os.environ['LOCAL_RANK'])))
    params = sum(p.numel() for p in model.parameters())
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = segmentor_batch(cfg.model, args.batch, tuple(args.size))
    model.train()

    def step():
        start = time.perf_counter()
        model.train_step(data, optim_wrapper)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    step()  # the AdamW state exists from here on
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    else:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # the peak resident set restarts from the current one
    seconds = step()
    peak = torch.cuda.max_memory_allocated() if cuda else status_kib('VmHWM')
    unit = 2 ** 20 if cuda else 1024
    row = dict(strategy=args.worker, rank=rank, peak_mib=(peak - baseline) / unit,
               process_peak_mib=peak / unit if not cuda else None, step_s=seconds,
               local_params_m=params / 1e6)
    rows = [None] * dist.get_world_size()
    dist.all_gather_object(rows, row)
    if rank == 0:
        print('ROWS ' + json.dumps(dict(rows=rows, machine=describe(machine_record('cuda' if cuda else 'cpu')))))
    dist.barrier()
    dist.destroy_process_group()


def launch(args, strategy):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', f'--nproc_per_node={args.procs}',
           f'--master_port={args.port}', os.path.abspath(__file__), '--worker', strategy,
           '--config', args.config, '--size', *map(str, args.size), '--batch', str(args.batch),
           '--threads', str(args.threads)]
    if args.depth:
        cmd += ['--depth', str(args.depth)]
    if args.bf16:
        cmd.append('--bf16')
    # freed blocks go back to the kernel at once, so the resident set follows what is alive
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MALLOC_MMAP_THRESHOLD_='65536',
               PYTHONPATH=os.pathsep.join([HERE, ROOT] + os.environ.get('PYTHONPATH', '').split(os.pathsep)))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith('ROWS ')]
    if out.returncode != 0 or not lines:
        sys.exit(f'{strategy} run failed (exit {out.returncode}):\n{out.stderr[-4000:]}')
    return json.loads(lines[-1][5:])


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    results = {s: launch(args, s) for s in args.strategies}
    machine = next(iter(results.values()))['machine']
    print(f"{os.path.relpath(args.config, ROOT)}{f' (depth {args.depth})' if args.depth else ''}: "
          f"train step, {args.procs} ranks x batch {args.batch}, {args.size[0]}x{args.size[1]}, "
          f"{'FSDP bf16' if args.bf16 else 'float32'}")
    print(machine)
    peaks = {}
    for strategy, result in results.items():
        rows = result['rows']
        peaks[strategy] = max(r['peak_mib'] for r in rows)
        print(f"  {strategy:4s}  peak per rank (over the pre-model baseline) "
              + ' / '.join(f"{r['peak_mib']:.0f}" for r in rows) + ' MiB'
              + f"  step {max(r['step_s'] for r in rows):.1f} s"
              + f"  parameters held per rank {rows[0]['local_params_m']:.1f} M")
    if 'fsdp' in peaks and 'ddp' in peaks:
        print(f"  fsdp / ddp peak memory per rank: {peaks['fsdp'] / peaks['ddp']:.2f}x")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), results=results,
                           ratio=peaks.get('fsdp', 0) / peaks['ddp'] if 'ddp' in peaks else None), f, indent=1)


if __name__ == '__main__':
    main()
