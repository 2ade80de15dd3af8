"""Scale-out training: ranks take disjoint slices of the single-process batches, one step on two
gloo processes gives the single-process gradient, a `torchrun --nproc_per_node 2` run matches
the 1-process run and only rank 0 writes, and per-fold runs merge into the all-folds report."""

import csv
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from neometer.cli import main
from neometer.data.preprocess import PreprocessSpec
from neometer.train import distributed, loop

torch.set_num_threads(1)
pytestmark = pytest.mark.xdist_group(name="train")
TINY = ["--task", "multitask", "--img", "64", "--width-mult", "0.35", "--epochs", "2", "--folds", "2", "--fps", "4",
        "--max-frames", "2", "--batch-size", "4", "--device", "cpu", "--quiet", "--no-report"]


# --- sharding -------------------------------------------------------------------------------

@pytest.mark.parametrize("n,batch,world", [(23, 6, 2), (24, 8, 3), (13, 6, 2)])
def test_ranks_see_disjoint_frames_that_make_up_the_single_process_batch(n, batch, world):
    single = loop.EpochBatches(n, batch, True, seed=3, drop_last=0 < n % batch < 2)
    ranks = [loop.EpochBatches(n, batch, True, seed=3, drop_last=0 < n % batch < 2 * world, rank=r, world=world)
             for r in range(world)]
    for epoch in (0, 1):
        for s in [single, *ranks]:
            s.epoch = epoch
        steps = [list(r) for r in ranks]
        assert len({len(s) for s in steps}) == 1, "every rank must take the same number of steps"
        seen = []
        for i, parts in enumerate(zip(*steps)):
            flat = [p for part in parts for p in part]
            assert len(set(flat)) == len(flat), "ranks share a frame"
            assert all(len(part) >= 2 for part in parts), "a rank got fewer than 2 frames (BatchNorm)"
            assert ranks[0].global_size(i) == len(flat)
            seen.append(sorted(flat))
        expected = [sorted(b) for b in single][:len(seen)]
        if n % batch >= 2 * world or n % batch in (0, 1):  # the same last-batch rule on both sides
            assert seen == expected
        else:
            assert seen == expected[:-1]
    # the real loader: rank 1 of 2 loads only its frames
    table_rows = np.arange(10, 10 + n)
    ld = loop.make_loader(_table(n + 10), table_rows, batch, True, seed=3, rank=1, world=2)
    got = np.concatenate([t[:, 0].numpy() for _, _, t in ld])
    want = table_rows[np.concatenate([np.asarray(b) for b in ld.sampler])]
    np.testing.assert_array_equal(got, want.astype(np.float32))


def _table(n, size=32):
    class T:  # the arrays FrameBatches reads
        pass

    t = T()
    rng = np.random.default_rng(0)
    t.images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    t.masks = rng.integers(0, 255, (n, size, size), dtype=np.uint8)
    t.height_cm = np.arange(n, dtype=np.float32)
    t.weight_kg = np.arange(n, dtype=np.float32) / 10
    return t


# --- one step, two gloo processes ------------------------------------------------------------

def _tiny():
    from neometer.models.regressor import build_regressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        return build_regressor("mobilenet_v2", 2, 0.35)


def _one_step(model, table, positions, shard=None):
    """One augmented, dropout-on training step over `positions`; leaves the gradients."""
    images, masks, targets = loop.FrameBatches(table, np.arange(len(table.images)))[positions]
    torch.manual_seed(7)  # the augmentation and dropout draws
    x = loop.to_input(images, masks, PreprocessSpec(target_size=64), torch.device("cpu"), True, augment=True,
                      shard=shard)
    loss = ((model(x) - targets / 10) ** 2).mean(dim=0).sum()
    if shard is not None:
        loss = loss * shard.loss_weight(len(positions))
    loss.backward()


def _rank_main(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    model = _tiny().train()
    batch = list(range(5))  # ragged: rank 0 gets 3 frames, rank 1 gets 2
    shard = distributed.BatchShard(rank, world, global_n=len(batch))
    ddp = distributed.shard_model(model, torch.device("cpu"), shard)
    _one_step(ddp, _table(5, 64), batch[rank::world], shard)
    distributed.unshard_model(model)
    if rank == 0:
        np.savez(out, **{f"g/{k}": p.grad.numpy() for k, p in model.named_parameters()},
                 **{f"b/{k}": b.numpy() for k, b in model.named_buffers()})
    torch.distributed.destroy_process_group()


def test_one_step_on_two_gloo_processes_gives_the_single_process_gradient(tmp_path):
    import socket

    import torch.multiprocessing as mp

    model = _tiny().train()
    _one_step(model, _table(5, 64), list(range(5)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_main, args=(2, port, str(tmp_path / "rank0.npz")), nprocs=2, join=True)
    got = np.load(tmp_path / "rank0.npz")
    grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
    num = sum(float(((grads[k] - got[f"g/{k}"]) ** 2).sum()) for k in grads)
    den = sum(float((g ** 2).sum()) for g in grads.values())
    # measured 2.8e-5 at 64 px (float32 summation order); at 32 px the last BatchNorms see 1x1 maps,
    # 5 values a channel, and the same code differs by ~1e-3: ill-conditioned, not wrong
    assert (num / den) ** 0.5 < 1e-4
    for k, b in model.named_buffers():  # whole-batch BatchNorm statistics
        np.testing.assert_allclose(got[f"b/{k}"], b.numpy(), rtol=1e-4, atol=1e-4)


# --- torchrun end to end ---------------------------------------------------------------------

SPY = '''
import os, sys
import neometer.models.checkpoint as ck
from neometer.train import loop

def spy(fn, what):
    def wrapped(path, *a, **k):
        with open(os.environ["SPY_LOG"], "a") as f:
            f.write(f"{os.environ.get('RANK', '-')} {what} {path}\\n")
        return fn(path, *a, **k)
    return wrapped

ck.save_checkpoint = spy(ck.save_checkpoint, "checkpoint")
loop._save_state = spy(loop._save_state, "state")
from neometer.cli import main
sys.exit(main(["train", *sys.argv[1:]]))
'''


@pytest.fixture(scope="module")
def runs(synth_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    data = ["--data", str(synth_dataset), "--cache-dir", str(root / "cache"), *TINY]
    assert main(["train", *data, "--out", str(root / "all")]) == 0  # 1 process, every fold
    assert main(["train", *data, "--fold", "1", "--out", str(root / "fold1")]) == 0
    (root / "spy.py").write_text(SPY)
    env = dict(os.environ, SPY_LOG=str(root / "writes.log"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(root / "spy.py"), *data, "--fold", "0", "--out", str(root / "ddp0")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc.stdout


def _preds(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_torchrun_two_processes_match_one_process(runs):
    from safetensors.numpy import load_file

    root, out = runs
    one, two = root / "all" / "fold0", root / "ddp0" / "fold0"
    h1 = json.loads((one / "model.json").read_text())["training"]["history"]
    h2 = json.loads((two / "model.json").read_text())["training"]["history"]
    assert h2[0]["loss"] == pytest.approx(h1[0]["loss"], rel=1e-3)  # measured ~1e-5
    for a, b in zip(h1, h2):
        np.testing.assert_allclose(b["val_mae"], a["val_mae"], atol=5e-3)  # measured ~1e-3 (cm / kg)
    p1, p2 = _preds(one / "predictions.csv"), _preds(two / "predictions.csv")
    assert [(r["media"], r["frame_index"]) for r in p1] == [(r["media"], r["frame_index"]) for r in p2]
    diff = max(abs(float(a[k]) - float(b[k])) for a, b in zip(p1, p2) for k in ("height_pred", "weight_pred"))
    assert diff < 0.01  # measured ~1e-3 cm after 2 epochs (Adam turns float noise into lr-sized steps)
    w1, w2 = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    assert w1.keys() == w2.keys()  # plain BatchNorm / Dropout again: the same network is saved
    params = [k for k in w1 if "running" not in k and "num_batches" not in k]
    num = sum(float(((w1[k].astype(np.float64) - w2[k]) ** 2).sum()) for k in params)
    den = sum(float((w1[k].astype(np.float64) ** 2).sum()) for k in params)
    assert (num / den) ** 0.5 < 1e-2  # measured ~1e-3
    assert "2 ranks (global batch 4)" in out


def test_only_rank_zero_writes_and_logs(runs):
    root, out = runs
    writes = (root / "writes.log").read_text().split("\n")
    writes = [w.split() for w in writes if w]
    assert writes and {w[0] for w in writes} == {"0"}, writes
    assert sum(w[1] == "state" for w in writes) == 2  # one state.pt per epoch
    assert sum(w[1] == "checkpoint" for w in writes) == 2  # fold0/model + the shipped model
    assert out.count("shipped model:") == 1 and out.count("epoch 2/2") == 1
    assert not list((root / "ddp0").rglob("*.tmp"))


def test_fold_runs_merge_into_the_all_folds_report(runs):
    root, _ = runs
    # a --fold run is the same fold of the all-folds run, frame for frame
    assert _preds(root / "fold1" / "fold1" / "predictions.csv") == _preds(root / "all" / "fold1" / "predictions.csv")
    assert main(["eval", str(root / "all"), "--out", str(root / "rep_all")]) == 0
    assert main(["eval", str(root / "ddp0"), str(root / "fold1"), "--out", str(root / "rep_merged")]) == 0
    a = json.loads((root / "rep_all" / "report.json").read_text())
    b = json.loads((root / "rep_merged" / "report.json").read_text())
    assert a["folds"] == b["folds"] == [0, 1] and a["n_infants"] == b["n_infants"] == 8
    for q in ("height", "weight"):
        pa, pb = a["per_frame"]["pooled"][q], b["per_frame"]["pooled"][q]
        assert pa["n"] == pb["n"]
        assert pb["mae"] == pytest.approx(pa["mae"], abs=5e-3)
        assert pb["baseline_mae"] == pytest.approx(pa["baseline_mae"], abs=1e-9)


def test_torchrun_needs_an_explicit_out_folder(synth_dataset, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--data", str(synth_dataset), *TINY]) == 2
    assert "--out RUN_DIR" in capsys.readouterr().err
    assert distributed.env_from_environ({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1",
                                         "LOCAL_WORLD_SIZE": "2"}) == distributed.DistEnv(3, 4, 1, 2)
    assert not distributed.env_from_environ({}).active
    assert distributed.restarted_by_torchrun({"TORCHELASTIC_RESTART_COUNT": "1"})
    assert not distributed.restarted_by_torchrun({"TORCHELASTIC_RESTART_COUNT": "0"})
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in distributed.restart_warning({"TORCHELASTIC_MAX_RESTARTS": "3"})
    assert distributed.restart_warning({"TORCHELASTIC_MAX_RESTARTS": "3", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}) is None
    assert distributed.restart_warning({"TORCHELASTIC_MAX_RESTARTS": "0"}) is None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_rendezvous_and_train_like_one_process(runs, synth_dataset):
    """The multi-node command of docs/distributed.md, with two torchrun agents on this host
    standing in for two machines (c10d rendezvous, one process per 'node')."""
    root, _ = runs
    port = _free_port()
    args = ["--data", str(synth_dataset), "--cache-dir", str(root / "cache"), *TINY, "--fold", "0",
            "--out", str(root / "nodes")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    agents = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nodes",
                                "train.py", *args], env=env, cwd=os.path.dirname(os.path.dirname(__file__)),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [a.communicate(timeout=600)[0] for a in agents]
    assert [a.returncode for a in agents] == [0, 0], "\n".join(o[-2000:] for o in outs)
    assert sum("2 ranks (global batch 4)" in o for o in outs) == 1  # one rank 0, on one of the 'nodes'
    one = json.loads((root / "all" / "fold0" / "model.json").read_text())["training"]["history"]
    two = json.loads((root / "nodes" / "fold0" / "model.json").read_text())["training"]["history"]
    assert two[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-3)
    np.testing.assert_allclose(two[-1]["val_mae"], one[-1]["val_mae"], atol=5e-3)
