import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from models import CheckpointError, build, load_checkpoint, read_metadata, save_checkpoint
from models.checkpoint import update_training_metadata

ARCH = dict(num_classes=3, image_size=28, channels=1, latent_dim=8, g_width=8, d_width=8)
CLASSES = ["cat", "dog", "fox"]


def write(path, family="acgan", arch=ARCH, classes=CLASSES):
    torch.manual_seed(0)
    G = build(family, **arch)
    save_checkpoint(path, G, family, arch, {"dataset": "test", "steps": 1}, classes=classes)
    return G


def test_round_trip_gives_identical_outputs(tmp_path):
    path = tmp_path / "acgan.safetensors"
    G = write(path).eval()
    ckpt = load_checkpoint(path)
    z, y = torch.randn(4, 8), torch.eye(3)[[0, 1, 2, 0]]
    assert torch.equal(G(z, y), ckpt.generator(z, y))
    assert (ckpt.name, ckpt.family, ckpt.classes, ckpt.arch) == ("acgan", "acgan", CLASSES, ARCH)
    assert read_metadata(path)["format"] == "condgen/1"
    assert path.stat().st_mode & 0o044 == 0o044  # readable by a service user, not owner-only


def test_stargan_round_trip_keeps_attributes(tmp_path):
    arch = dict(num_attributes=3, image_size=16, channels=3, g_width=8, d_width=8, res_blocks=1, d_layers=2)
    G = build("stargan", **arch).eval()
    path = tmp_path / "s.safetensors"
    save_checkpoint(path, G, "stargan", arch, {}, attributes=["a", "b", "male"], attribute_groups=[["a", "b"]])
    ckpt = load_checkpoint(path)
    x, c = torch.rand(2, 3, 16, 16), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    assert torch.equal(G(x, c), ckpt.generator(x, c))
    assert ckpt.attributes == ["a", "b", "male"] and ckpt.attribute_groups == [["a", "b"]]


def test_pickle_file_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="evil.safetensors: not a safetensors file"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "acgan.safetensors"
    write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="acgan.safetensors"):
        load_checkpoint(path)


@pytest.mark.parametrize("drop", ["format", "family", "arch", "classes"])
def test_missing_metadata_is_refused_naming_the_key(tmp_path, drop):
    src = tmp_path / "full.safetensors"
    write(src)
    meta = read_metadata(src)
    del meta[drop]
    from models.checkpoint import read_tensors

    path = tmp_path / "partial.safetensors"
    save_file(read_tensors(src), str(path), metadata=meta)
    with pytest.raises(CheckpointError, match=rf"partial.safetensors: .*{drop}"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_arch_are_refused(tmp_path):
    path = tmp_path / "acgan.safetensors"
    write(path)
    from models.checkpoint import read_tensors, write_safetensors

    meta = read_metadata(path)
    meta["arch"] = json.dumps({**ARCH, "g_width": 16})
    write_safetensors(path, read_tensors(path), meta)
    with pytest.raises(CheckpointError, match="weights do not fit arch.*shape"):
        load_checkpoint(path)


def test_class_list_must_match_arch(tmp_path):
    path = tmp_path / "acgan.safetensors"
    write(path, classes=["cat", "dog"])
    with pytest.raises(CheckpointError, match="lists 2 names but arch expects 3"):
        load_checkpoint(path)


def test_unknown_family_and_wrong_format_are_refused(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "condgen/1", "family": "biggan",
                                                         "arch": "{}", "training": "{}"})
    with pytest.raises(CheckpointError, match="unknown family 'biggan'"):
        load_checkpoint(path)
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "other/9", "family": "acgan",
                                                         "arch": "{}", "training": "{}"})
    with pytest.raises(CheckpointError, match="format 'other/9'"):
        load_checkpoint(path)


def test_update_training_metadata_merges_metrics(tmp_path):
    path = tmp_path / "acgan.safetensors"
    G = write(path).eval()
    update_training_metadata(path, {"metrics": {"judge_accuracy": 0.9}})
    ckpt = load_checkpoint(path)
    assert ckpt.training["metrics"] == {"judge_accuracy": 0.9} and ckpt.training["steps"] == 1
    z, y = torch.randn(2, 8), torch.eye(3)[:2]
    assert torch.equal(G(z, y), ckpt.generator(z, y))
