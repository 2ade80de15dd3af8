"""The frame table's pixels stay on disk (RowStore): indexing reads exactly the rows asked for,
each torchrun rank reads only its own frames, and `neometer data pack` moves a dataset's cache
into a few shard files that serve the same table without decoding."""

import pickle

import numpy as np
import pytest

from neometer.cli import main
from neometer.data import cache as cache_mod
from neometer.data.preprocess import PreprocessSpec
from neometer.data.rowstore import RowStore
from neometer.errors import NeometerError
from neometer.train import loop

SPEC = PreprocessSpec(target_size=64)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 255, (n, 4, 5, 3), dtype=np.uint8) for n in (3, 7, 5)]
    paths = []
    for i, a in enumerate(arrays):
        paths.append(tmp_path / f"a{i}.npy")
        np.save(paths[-1], a)
    return paths, arrays


def test_rowstore_reads_the_same_rows_as_the_concatenated_arrays(files):
    paths, arrays = files
    # the middle part is a row range of its file, as a recording's slice of a packed shard
    store = RowStore.from_parts([(paths[0], 0, 3), (paths[1], 2, 6), (paths[2], 0, 5)])
    whole = np.concatenate([arrays[0], arrays[1][2:6], arrays[2]])
    assert store.shape == whole.shape and store.dtype == whole.dtype and len(store) == 12
    np.testing.assert_array_equal(np.asarray(store), whole)
    np.testing.assert_array_equal(store[5], whole[5])
    np.testing.assert_array_equal(store[-1], whole[-1])
    np.testing.assert_array_equal(store[2:9:3], whole[2:9:3])
    rows = np.array([11, 0, 4, 4, 7, 3])  # unsorted, repeated, across all parts
    np.testing.assert_array_equal(store[rows], whole[rows])
    mask = np.arange(12) % 3 == 0
    np.testing.assert_array_equal(store[mask], whole[mask])
    np.testing.assert_array_equal(store[rows, 1], whole[rows, 1])
    view = store.take([10, 2, 6, 8])
    np.testing.assert_array_equal(view[[3, 0]], whole[[8, 10]])
    np.testing.assert_array_equal(np.asarray(view.take([1, 1])), whole[[2, 2]])
    assert store.files([0, 1]) == {str(paths[0])} and store.files([3, 11]) == {str(paths[1]), str(paths[2])}
    with pytest.raises(IndexError):
        store[12]
    with pytest.raises(IndexError):
        store[np.array([0, 12])]


def test_rowstore_pickles_small_and_holds_no_open_files(files, tmp_path):
    import os

    paths, arrays = files
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((400, 64, 64, 3), np.uint8))  # ~4.9 MB
    store = RowStore.from_parts([(big, 0, 400), (paths[1], 0, 7)][:1])
    fds = len(os.listdir("/proc/self/fd"))
    store[np.arange(0, 400, 7)]
    assert len(os.listdir("/proc/self/fd")) == fds  # no descriptor kept (tens of thousands of entries)
    blob = pickle.dumps(store)
    assert len(blob) < 4096  # DataLoader workers get file names, not pixels
    np.testing.assert_array_equal(pickle.loads(blob)[399], np.zeros((64, 64, 3), np.uint8))


def test_rowstore_refuses_mismatched_or_truncated_files(files, tmp_path):
    paths, _ = files
    other = tmp_path / "other.npy"
    np.save(other, np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(NeometerError) as err:
        RowStore.from_parts([(paths[0], 0, 3), (other, 0, 2), (paths[1], 0, 99)])
    assert len(err.value.problems) == 2  # both problems at once: the row range and the shape
    store = RowStore.from_parts([(paths[1], 0, 7)])
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:-10])  # a disk-full truncation
    with pytest.raises(NeometerError, match="truncated"):
        store[6]


def test_frame_table_pixels_stay_on_disk(synth_dataset, tmp_path):
    table = cache_mod.build_frame_table(synth_dataset, SPEC, fps=4, max_frames_per_recording=2,
                                        cache_dir=tmp_path / "c", progress=False)
    assert isinstance(table.images, RowStore) and isinstance(table.masks, RowStore)
    assert table.images.shape == (len(table), 64, 64, 3) and table.masks.shape == (len(table), 64, 64)
    sub = table.subset([3, 1])
    assert isinstance(sub.images, RowStore)
    np.testing.assert_array_equal(sub.images[0], table.images[3])
    # every entry file of the cache belongs to exactly its recording's rows
    for r in np.unique(table.recording):
        rows = np.flatnonzero(table.recording == r)
        assert len(table.images.files(rows)) == 1


def test_each_rank_reads_only_its_own_frames(synth_dataset, tmp_path, monkeypatch):
    table = cache_mod.build_frame_table(synth_dataset, SPEC, fps=4, max_frames_per_recording=2,
                                        cache_dir=tmp_path / "c", progress=False)
    train_rows = np.flatnonzero(np.isin(table.infant_id, sorted(set(table.infant_id))[:6]))
    read: list[int] = []
    real_read = RowStore._read

    def spy(self, rows):
        if self.row_shape == (64, 64, 3):
            read.extend(int(r) for r in rows)
        return real_read(self, rows)

    monkeypatch.setattr(RowStore, "_read", spy)
    per_rank = []
    for rank in (0, 1):
        read.clear()
        loader = loop.make_loader(table, train_rows, 4, True, seed=5, rank=rank, world=2)
        loader.sampler.epoch = 1
        for _ in loader:
            pass
        per_rank.append(list(read))
    a, b = per_rank
    assert len(set(a)) == len(a) and len(set(b)) == len(b)  # each frame read once per epoch
    assert not set(a) & set(b)  # no frame read by both ranks
    assert set(a) | set(b) <= set(train_rows.tolist())  # test frames are never read for training
    dropped = len(train_rows) % 4 if 0 < len(train_rows) % 4 < 4 else 0
    assert len(a) + len(b) == len(train_rows) - dropped


def test_pack_serves_the_same_table_from_a_few_shards(synth_dataset, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "c"
    args = dict(spec=SPEC, fps=4, max_frames_per_recording=2, cache_dir=cache)
    before = cache_mod.build_frame_table(synth_dataset, progress=False, **args)
    entries = [p for p in cache.glob("??/*") if p.is_dir()]
    assert len(entries) == len(before.recordings)
    before_images, before_masks = np.asarray(before.images), np.asarray(before.masks)
    frame_mb = (64 * 64 * 4) / 2**20
    pack = cache_mod.pack_cache(synth_dataset, shard_mb=5.5 * frame_mb, progress=False, **args)
    assert not [p for p in cache.glob("??/*") if p.is_dir()]  # the entries it replaces are gone
    with pytest.raises(NeometerError, match="start the job again"):  # a table built before the pack
        before.images[0]
    shards = sorted(pack.glob("*.images.npy"))
    assert len(shards) >= 3  # 5-6 frames per shard

    def no_decoding(*a, **k):
        raise AssertionError("decoded although the pack holds this recording")

    monkeypatch.setattr(cache_mod, "decode_recording", no_decoding)
    after = cache_mod.build_frame_table(synth_dataset, progress=False, **args)
    np.testing.assert_array_equal(np.asarray(after.images), before_images)
    np.testing.assert_array_equal(np.asarray(after.masks), before_masks)
    np.testing.assert_array_equal(after.frame_index, before.frame_index)
    np.testing.assert_array_equal(after.height_cm, before.height_cm)
    assert after.images.files() == {str(s) for s in shards}
    for r in np.unique(after.recording):  # a recording is never split across shards
        assert len(after.images.files(np.flatnonzero(after.recording == r))) == 1
    assert cache_mod.pack_cache(synth_dataset, progress=False, **args) is None  # nothing left to pack
    monkeypatch.undo()
    # a pack missing a shard file is ignored: its recordings are decoded again, nothing fails
    shards[0].unlink()
    again = cache_mod.build_frame_table(synth_dataset, progress=False, **args)
    np.testing.assert_array_equal(np.asarray(again.images), before_images)


def test_pack_cli_reports_every_bad_argument(synth_dataset, tmp_path, capsys):
    code = main(["data", "pack", str(tmp_path / "nowhere"), "--img", "0", "--shard-mb", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "--img 0" in err and "--shard-mb -1" in err and "no manifest.csv" in err
    assert "Traceback" not in err
    cache = tmp_path / "c"
    assert main(["data", "pack", str(synth_dataset), "--img", "64", "--fps", "4", "--max-frames", "2",
                 "--cache-dir", str(cache), "--keep-entries", "--quiet"]) == 0
    assert "recordings" in capsys.readouterr().out
    assert len(list((cache / "packs").glob("*/index.json"))) == 1
    assert [p for p in cache.glob("??/*") if p.is_dir()]  # --keep-entries kept them


def test_rank_benchmark_reports_every_bad_argument(tmp_path, capsys):
    code = main(["bench", "ranks", "--data", str(tmp_path / "nowhere"), "--src", f"old={tmp_path}", "--ranks", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "no manifest.csv" in err and "--src old=" in err and "--ranks 0" in err
    assert "Traceback" not in err
