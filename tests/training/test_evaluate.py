"""`python -m training.evaluate` end to end on tiny checkpoints and tiny data, and its parts."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from models import build, load_checkpoint, save_checkpoint
from models.checkpoint import read_tensors
from training.data import FASHION_MNIST_CLASSES, load_dataset, to_unit_range
from training.evaluate.checks import baseline_for, better_than, threshold_checks
from training.evaluate.class_conditional import judge_features
from training.evaluate.cli import main
from training.evaluate.fid_scale import fid_scale, gaussian_blur, nearest_rungs
from training.evaluate.samples import fit_to_judge
from training.evaluate.stargan import reconstruction_l1
from training.generate import generate
from training.judge import Judge, JudgeNet, load_judge, save_judge
from training.metrics.kid import kernel_distance
from training.metrics.prdc import prdc
from training.twemoji import TONES

from tests.training.test_stargan import TINY_ARCH as STARGAN_TINY_ARCH
from tests.training.test_stargan import tiny_faces  # noqa: F401  (a fixture)

PER_CLASS = 6


@pytest.fixture
def tiny_judge(tmp_path):
    """An untrained judge: the command's plumbing does not depend on how good the judge is."""
    torch.manual_seed(0)
    path = tmp_path / "judge.safetensors"
    save_judge(Judge(JudgeNet(1, 10).eval(), list(FASHION_MNIST_CLASSES), "tiny", 28, 1, 0.5), path)
    return path


def tiny_checkpoint(path, family, arch, training):
    torch.manual_seed(1)
    save_checkpoint(path, build(family, **arch), family, arch, training, classes=list(FASHION_MNIST_CLASSES))
    return path


@pytest.fixture
def tiny_checkpoints(tmp_path, tiny_fashion):
    spec = f"fashion-mnist:{tiny_fashion}"
    acgan = tiny_checkpoint(tmp_path / "acgan.safetensors", "acgan",
                            dict(num_classes=10, image_size=28, channels=1, latent_dim=16, g_width=8, d_width=8),
                            {"dataset": spec, "steps": 3, "metrics": {"losses": {"g_adv": 1.0}}})
    # The baseline at its published 32 px, trained on images padded by 2: evaluation must crop them back.
    baseline = tiny_checkpoint(tmp_path / "baselines" / "acgan-pytorchgan.safetensors", "acgan-pytorchgan",
                               dict(num_classes=10, image_size=32, channels=1, latent_dim=16),
                               {"dataset": spec, "steps": 3, "input_padding": 2})
    return acgan, baseline


def run_evaluate(*args):
    return main([*map(str, args), "--samples-per-class", str(PER_CLASS), "--ms-ssim-pairs", "4", "--cas-epochs", "1",
                 "--memorisation-per-class", "2", "--memorisation-held-apart", "10", "--prdc-k", "1"])


def test_evaluate_writes_a_report_and_records_every_metric(tmp_path, tiny_fashion, tiny_judge, tiny_checkpoints):
    acgan, baseline = tiny_checkpoints
    weights_before = read_tensors(acgan)
    out = tmp_path / "report"
    assert run_evaluate(acgan, baseline, "--data", f"fashion-mnist:{tiny_fashion}", "--judge", tiny_judge,
                        "--out", out, "--record") == 0

    report = (out / "report.md").read_text()
    assert "| `acgan` | acgan | 3 |" in report and "| `acgan-pytorchgan` | acgan-pytorchgan | 3 |" in report
    assert "better than the baseline trained as many steps" in report
    assert "| (a baseline) |" in report and "`acgan-pytorchgan`: accuracy " in report  # same steps: no caveat
    assert "steps**, not" not in report
    for name in ("acgan", "acgan-pytorchgan"):
        for figure in ("samples", "per_class", "nearest"):
            path = out / f"{name}_{figure}.png"
            assert f"]({path.name})" in report
            with Image.open(path) as image:
                assert image.width > 50 and image.height > 50
    with Image.open(out / "acgan-pytorchgan_samples.png") as image:  # a row of 28 px crops per class, doubled
        assert image.size == (2 * (PER_CLASS * 28 + (PER_CLASS + 1) * 2), 2 * (10 * 28 + 11 * 2))

    recorded = load_checkpoint(acgan).training["metrics"]
    assert {"accuracy", "fid", "fid_floor", "fid_scale", "fid_per_class", "kid", "prdc", "ms_ssim", "cas",
            "memorisation", "losses"} <= set(recorded)
    assert set(recorded["fid_scale"]) == {"pixel_noise_0.01", "pixel_noise_0.02", "pixel_noise_0.05",
                                          "pixel_noise_0.1", "blur_0.5px", "blur_1px"}
    assert "### Reading fid" in report and "| `acgan` | " + f"{recorded['fid']:.2f} |" in report
    assert f"The target, fid <= 2 x fid_floor ({2 * recorded['fid_floor']:.2f} for `acgan`), lies " in report
    intra = recorded["fid_per_class"]
    assert set(intra["generated"]) == set(intra["floor"]) == set(FASHION_MNIST_CLASSES)
    assert f"| bag | {recorded['accuracy']['generated_per_class']['bag']:.3f} | " in report
    assert f"| {intra['generated']['bag']:.2f} | {intra['floor']['bag']:.2f} |" in report
    assert "figures" not in recorded  # local paths are not part of a checkpoint
    assert all(torch.equal(weights_before[k], v) for k, v in read_tensors(acgan).items())  # metadata only

    # The accuracy is the judge's reading of the samples `score` draws: class k from seeds seed + k * n.
    ckpt, judge = load_checkpoint(acgan), load_judge(tiny_judge)
    for k, name in enumerate(FASHION_MNIST_CLASSES):
        expected = (judge.predict(generate(ckpt, k, PER_CLASS, k * PER_CLASS)) == k).float().mean().item()
        assert recorded["accuracy"]["generated_per_class"][name] == pytest.approx(expected, abs=1e-4)
    assert recorded["fid"] >= 0 and recorded["fid_floor"] >= 0

    # precision, recall, density, coverage: the samples' judge features against the whole real test split's
    test = load_dataset(f"fashion-mnist:{tiny_fashion}", "test", 28, 1)
    samples = torch.cat([generate(ckpt, k, PER_CLASS, k * PER_CLASS) for k in range(10)])
    sample_labels = torch.arange(10).repeat_interleave(PER_CLASS)
    test_features = judge_features(judge, to_unit_range(test.images))
    sample_features = judge_features(judge, samples)
    within = recorded["prdc"]
    assert within["generated"] == prdc(test_features, sample_features, k=1).rounded()
    assert within["generated_per_class"]["bag"] == prdc(test_features[test.labels == 8],
                                                        sample_features[sample_labels == 8], k=1).rounded()
    assert within["k"] == 1 and within["test_images"] == 20
    assert "### Fidelity and variety" in report
    assert "| `acgan` | " + " | ".join(f"{within['generated'][n]:.3f}" for n in
                                        ("precision", "recall", "density", "coverage")) + " |" in report
    assert f"| {within['generated_per_class']['bag']['precision']:.3f} / " in report
    # the kernel distance: the same features against the same test split, on the default subsets (capped by the
    # 20 test images), seeded by the evaluation's seed
    kid = recorded["kid"]
    assert kid["generated"] == kernel_distance(sample_features, test_features, 1000, 100, seed=0).rounded()
    assert kid["floor"]["subset_size"] == kid["generated"]["subset_size"] == 20 and kid["floor"]["subsets"] == 100
    assert kid["generated"]["standard_deviation"] > 0  # 20 of the 60 samples in each subset
    assert "### Kernel distance (KID)" in report
    assert f"| `acgan` | {kid['generated']['mean']:.4g} ± {kid['generated']['standard_deviation']:.4g} |" in report
    assert (f"| real training images (the fid_floor set) | {kid['floor']['mean']:.4g} ± "
            f"{kid['floor']['standard_deviation']:.4g} |") in report
    diversity = recorded["ms_ssim"]
    assert 0 <= diversity["classes_at_or_below_real"] <= 1
    errors = diversity["generated_standard_error_per_class"]
    assert set(errors) == set(diversity["real_standard_error_per_class"]) == set(diversity["generated_per_class"])
    assert set(diversity["clearly_below_real"]).isdisjoint(diversity["clearly_above_real"])
    assert diversity["classes_clearly_above_real"] == len(diversity["clearly_above_real"]) / 10
    assert f"| {diversity['generated_per_class']['bag']:.3f} ± {errors['bag']:.3f} | " in report
    assert "- ms_ssim: " in report and "standard errors of the difference" in report
    assert recorded["cas"]["train_images"] == 10 * PER_CLASS
    assert recorded["memorisation"]["samples_checked"] == 20

    base = load_checkpoint(baseline).training["metrics"]
    assert base["evaluation"]["input_padding_cropped"] == 2 and base["evaluation"]["generated_size"] == 32
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results] == ["acgan", "acgan-pytorchgan"]


def test_without_record_the_checkpoint_is_untouched(tmp_path, tiny_fashion, tiny_judge, tiny_checkpoints):
    acgan, _ = tiny_checkpoints
    before = acgan.read_bytes()
    assert run_evaluate(acgan, "--judge", tiny_judge, "--out", tmp_path / "r") == 0  # --data from the checkpoint
    assert acgan.read_bytes() == before
    assert (tmp_path / "r" / "report.md").is_file()


def test_the_real_side_is_computed_once_per_run_and_matches_a_run_of_its_own(tmp_path, tiny_fashion, tiny_judge,
                                                                             tiny_checkpoints, monkeypatch):
    import training.evaluate.class_conditional as class_conditional
    import training.evaluate.cli as evaluate_cli

    calls, thresholds = [], []
    real_reference = evaluate_cli.real_reference
    monkeypatch.setattr(evaluate_cli, "real_reference", lambda *a: calls.append(1) or real_reference(*a))
    threshold = class_conditional.memorisation_threshold
    monkeypatch.setattr(class_conditional, "memorisation_threshold", lambda *a: thresholds.append(1) or threshold(*a))
    spec = f"fashion-mnist:{tiny_fashion}"
    assert run_evaluate(*tiny_checkpoints, "--data", spec, "--judge", tiny_judge, "--out", tmp_path / "both") == 0
    # floor, scale, real MS-SSIM, CAS's real-data classifier, the judge on real test images and memorisation's
    # train-to-train distances: once for both
    assert len(calls) == 1 and len(thresholds) == 1
    assert run_evaluate(tiny_checkpoints[1], "--data", spec, "--judge", tiny_judge, "--out", tmp_path / "alone") == 0
    both = json.loads((tmp_path / "both" / "results.json").read_text())[1]["metrics"]
    alone = json.loads((tmp_path / "alone" / "results.json").read_text())[0]["metrics"]
    del both["figures"], alone["figures"]
    assert both == alone  # the baseline's figures do not depend on what was evaluated before it


def test_truncation_draws_the_samples_from_truncated_latents_and_says_so(tmp_path, tiny_fashion, tiny_judge,
                                                                          tiny_checkpoints):
    acgan, _ = tiny_checkpoints
    before = acgan.read_bytes()
    out = tmp_path / "psi"
    assert run_evaluate(acgan, "--judge", tiny_judge, "--out", out, "--truncation", "0.5") == 0
    assert acgan.read_bytes() == before
    metrics = json.loads((out / "results.json").read_text())[0]["metrics"]
    assert metrics["evaluation"]["truncation"] == 0.5
    assert "**Truncated samples**: every latent drawn with |z_i| <= 0.5" in (out / "report.md").read_text()
    # the judge read the samples the service's truncation option would draw, not the untruncated ones
    ckpt, judge = load_checkpoint(acgan), load_judge(tiny_judge)
    truncated = generate(ckpt, 3, PER_CLASS, 3 * PER_CLASS, 0.5)
    assert not torch.equal(truncated, generate(ckpt, 3, PER_CLASS, 3 * PER_CLASS))
    expected = (judge.predict(truncated) == 3).float().mean().item()
    assert metrics["accuracy"]["generated_per_class"][FASHION_MNIST_CLASSES[3]] == pytest.approx(expected, abs=1e-4)


def test_truncated_figures_are_never_recorded(tmp_path, tiny_judge, tiny_checkpoints, capsys):
    acgan, _ = tiny_checkpoints
    before = acgan.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        run_evaluate(acgan, "--judge", tiny_judge, "--out", tmp_path / "r", "--truncation", "0.5", "--record")
    assert exit_.value.code == 2 and "--record stores the figures of untruncated samples" in capsys.readouterr().err
    assert acgan.read_bytes() == before


def test_too_few_samples_for_the_prdc_neighbours_is_a_usage_error(tmp_path, tiny_judge, tiny_checkpoints, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(tiny_checkpoints[0]), "--judge", str(tiny_judge), "--out", str(tmp_path / "r"),
              "--samples-per-class", "5"])  # the default k is 5
    assert exit_.value.code == 2 and "--samples-per-class (5) must exceed --prdc-k (5)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_one_ms_ssim_pair_is_a_usage_error(tmp_path, tiny_judge, tiny_checkpoints, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(tiny_checkpoints[0]), "--judge", str(tiny_judge), "--out", str(tmp_path / "r"),
              "--ms-ssim-pairs", "1"])
    assert exit_.value.code == 2 and "a standard error needs two pairs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_missing_judge_is_a_clear_error(tmp_path, tiny_checkpoints, capsys):
    acgan, _ = tiny_checkpoints
    assert run_evaluate(acgan, "--judge", tmp_path / "nope.safetensors", "--out", tmp_path / "r") == 2
    assert "no judge at" in capsys.readouterr().err


def test_a_judge_of_other_classes_is_refused(tmp_path, tiny_checkpoints, capsys):
    acgan, _ = tiny_checkpoints
    path = tmp_path / "digits.safetensors"
    save_judge(Judge(JudgeNet(1, 10).eval(), [f"digit_{i}" for i in range(10)], "tiny", 28, 1, 0.5), path)
    assert run_evaluate(acgan, "--judge", path, "--out", tmp_path / "r") == 2
    assert "classes" in capsys.readouterr().err


def test_fit_to_judge_crops_the_training_padding_exactly(tiny_fashion):
    from training.baseline_cli import fit_to_size

    data = load_dataset(f"fashion-mnist:{tiny_fashion}")
    padded, pad = fit_to_size(data, 32, "pad")
    assert pad == 2 and padded.image_size == 32
    real = data.images.float() / 127.5 - 1
    assert torch.equal(fit_to_judge(padded.images.float() / 127.5 - 1, pad, 28, 1), real)
    resized, pad = fit_to_size(data, 32, "resize")
    assert pad == 0 and resized.image_size == 32
    assert fit_to_judge(resized.images.float() / 127.5 - 1, 0, 28, 1).shape == real.shape


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.6])
def test_gaussian_blur_matches_scipy(sigma):
    images = torch.from_numpy(np.random.default_rng(1).random((2, 3, 12, 12)))
    expected = ndimage.gaussian_filter(images.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror", truncate=4.0)
    assert torch.allclose(gaussian_blur(images, sigma), torch.from_numpy(expected), atol=1e-12)


def test_fid_scale_grows_with_each_degradation():
    # Smooth random images, so blur and noise both move them; the features are the pixels themselves.
    smooth = ndimage.gaussian_filter(np.random.default_rng(2).random((400, 1, 8, 8)), sigma=(0, 0, 1, 1))
    images = torch.from_numpy(smooth * 4 - 2).float().clamp(-1, 1)
    flatten = lambda x: x.flatten(1)  # noqa: E731
    scale = fid_scale(flatten, images[:200], flatten(images[200:]), seed=0)
    assert scale["pixel_noise_0.01"] < scale["pixel_noise_0.02"] < scale["pixel_noise_0.05"] < scale["pixel_noise_0.1"]
    assert scale["blur_0.5px"] < scale["blur_1px"]
    assert scale == fid_scale(flatten, images[:200], flatten(images[200:]), seed=0)  # the noise comes from the seed


def test_nearest_rungs_names_the_rungs_either_side():
    scale = {"pixel_noise_0.02": 2.5, "blur_0.5px": 25.4, "pixel_noise_0.1": 60.3}
    assert nearest_rungs(29.1, scale) == "between blur_0.5px (25.40) and pixel_noise_0.1 (60.30)"
    assert nearest_rungs(1.0, scale) == "below every rung (the nearest: pixel_noise_0.02 (2.50))"
    assert nearest_rungs(99.0, scale) == "above every rung (the farthest: pixel_noise_0.1 (60.30))"


def test_targets_and_the_baseline_comparison():
    def metrics(acc, fid, floor, share, mean, cas, real):
        return {"accuracy": {"generated": acc}, "fid": fid, "fid_floor": floor,
                "ms_ssim": {"classes_at_or_below_real": share, "generated": mean},
                "cas": {"cas": cas, "real": real, "ratio": cas / real}}

    ours = metrics(0.96, 3.0, 1.6, 0.9, 0.30, 0.80, 0.90)
    assert all(threshold_checks(ours).values())
    worse = threshold_checks(metrics(0.94, 3.3, 1.6, 0.8, 0.30, 0.70, 0.90))
    assert not any(worse.values())
    baseline = metrics(0.80, 9.0, 1.6, 0.9, 0.35, 0.60, 0.90)
    assert better_than(ours, baseline) == {"accuracy": True, "fid": True, "ms_ssim": True, "cas": True}
    assert better_than(baseline, ours) == {"accuracy": False, "fid": False, "ms_ssim": False, "cas": False}


def test_each_checkpoint_meets_the_baseline_trained_as_many_steps():
    short, long = {"name": "b15", "steps": 15000}, {"name": "b20", "steps": 20000}
    assert baseline_for({"steps": 15000}, [long, short]) is short
    assert baseline_for({"steps": 20000}, [short, long]) is long
    assert baseline_for({"steps": 19000}, [short, long]) is long  # none as long: the nearest budget
    assert baseline_for({"steps": 15000}, []) is None


# --- StarGAN -------------------------------------------------------------------------------------------


class Offset(torch.nn.Module):
    """G(x, c) = x + offset, whatever c asks."""

    def __init__(self, offset: float):
        super().__init__()
        self.offset = offset

    def forward(self, x, c):
        return x + self.offset


def test_reconstruction_l1_is_the_round_trip_error():
    x = torch.zeros(4, 3, 8, 8)
    c = torch.tensor([[1.0, 0.0, 1.0]] * 4)
    groups = [[0, 1]]
    assert reconstruction_l1(Offset(0.0), x, c, groups) == 0.0
    # Two edits of +0.1 each: the round trip is 0.2 off on the [-1, 1] scale, 0.1 on the [0, 1] scale.
    assert reconstruction_l1(Offset(0.1), x, c, groups) == pytest.approx(0.1)


def tiny_stargan(path, faces):
    arch = {"num_attributes": len(TONES) + 1, "image_size": 16, "channels": 3, **STARGAN_TINY_ARCH}
    torch.manual_seed(0)
    tones = list(TONES)
    save_checkpoint(path, build("stargan", **arch), "stargan", arch, {"dataset": f"celeba:{faces}"},
                    attributes=tones + ["male"], attribute_groups=[tones])
    return path


def test_evaluate_runs_stargan_checkpoints_through_stargan_eval(tmp_path, tiny_faces, capsys):  # noqa: F811
    path = tiny_stargan(tmp_path / "stargan.safetensors", tiny_faces)
    tones = list(TONES)
    out = tmp_path / "r"
    assert main([str(path), "--out", str(out), "--truncation", "0.5"]) == 2  # an editor draws no latents
    assert "--truncation does not apply" in capsys.readouterr().err
    assert main([str(path), "--out", str(out), "--stargan-judge-epochs", "1", "--record"]) == 0
    recorded = load_checkpoint(path).training["metrics"]["stargan_eval"]
    assert set(recorded["judge"]["judge_agreement_per_attribute"]) <= set(tones + ["male"])
    assert set(recorded["judge_real_test_recall"]) <= set(tones + ["male", "not male"])
    assert 0 <= recorded["judge_agreement_ceiling"] <= 1
    assert 0 <= recorded["identity_l1"] <= 1 and 0 <= recorded["reconstruction_l1"] <= 1
    report = (out / "report.md").read_text()
    assert "reconstruction L1" in report and "(stargan_edits.png)" in report
    if recorded["judge"]["judge_agreement"] < 1:  # some misses: the report splits faint from wrong edits
        faint = recorded["judge"]["judge_misses_reading_the_source"]
        assert f"too faint) | {100 * faint:.1f}% |" in report
    assert (out / "stargan_edits.png").is_file()


def test_stargan_report_splits_the_tone_miss_when_the_figures_have_it(tmp_path):
    from training.evaluate.report import stargan_section

    tone = {"light_to_dark_l1_edit": 0.07, "light_to_dark_l1_input": 0.1}
    metrics = {"test_images": 4, "data": "twemoji-faces:d", "identity_l1": 0.01, "reconstruction_l1": 0.02,
               "judge": {"judge_agreement": 0.5, "judge_agreement_per_attribute": {"male": 0.5}},
               "figures": {"edits": str(tmp_path / "edits.png")}, "tone": tone}
    result = {"name": "s", "path": "s.safetensors", "metrics": metrics}
    older = "\n".join(stargan_section(result, tmp_path))  # figures recorded before the split: no such rows
    assert "0.0700 (0.1000)" in older and "left alone" not in older
    tone.update(light_to_dark_tone_pixels_left_alone=0.33, light_to_dark_error_outside_tone_pixels=0.38)
    report = "\n".join(stargan_section(result, tmp_path))
    assert "the edit left alone | 33.0% |" in report and "outside those pixels | 38.0% |" in report


def test_stargan_report_names_what_group_edits_were_misread_as(tmp_path):
    from training.evaluate.report import stargan_section

    judge = {"judge_agreement": 0.6, "judge_agreement_per_attribute": {"tone_light": 0.6, "male": 0.5}}
    metrics = {"test_images": 4, "data": "twemoji-faces:d", "identity_l1": 0.01, "reconstruction_l1": 0.02,
               "judge": judge, "figures": {"edits": str(tmp_path / "edits.png")}}
    result = {"name": "s", "path": "s.safetensors", "metrics": metrics}
    older = "\n".join(stargan_section(result, tmp_path))  # figures recorded before the counts: plain rows
    assert "| ... edits to `tone_light` | 60.0% |" in older
    judge["judge_reads_group_edits_as"] = {"tone_light": {"tone_default": 1, "tone_light": 6, "tone_medium_light": 3}}
    report = "\n".join(stargan_section(result, tmp_path))
    # The misreadings, most frequent first; the edits read as asked are not repeated; male has no group.
    assert "| ... edits to `tone_light` | 60.0% (misread as `tone_medium_light` 3, `tone_default` 1) |" in report
    assert "| ... edits to `male` | 50.0% |" in report
    assert "by the input's own value" not in report  # no split recorded: no table
    metrics["judge_real_test_recall"] = {"tone_light": 0.8, "male": 0.9, "not male": 0.75}
    metrics["judge_agreement_ceiling"] = 0.85
    report = "\n".join(stargan_section(result, tmp_path))  # beside each, real held-out images of the target
    assert ("| ... edits to `tone_light` | 60.0% (misread as `tone_medium_light` 3, `tone_default` 1); "
            "real held-out `tone_light` images read so: 80.0% |") in report
    assert ("| ... edits to `male` | 50.0%; real held-out images read right: `male` 90.0%, not `male` 75.0% |"
            in report)
    ceiling = "| ... the ceiling: every edit read as the classifier reads real held-out images of its target | 85.0% |"
    assert ceiling in report


def test_stargan_report_tabulates_agreement_by_the_inputs_own_value():
    from training.evaluate.report import by_source_table

    table = by_source_table({"tone_default": {"tone_light": 0.5, "tone_dark": 1.0},
                             "tone_light": {"tone_default": 0.5, "tone_dark": 1.0},
                             "tone_dark": {"tone_default": 0.25, "tone_light": 0.75}})
    # Columns in the group's order, as the rows are, whatever order each row's dict has.
    assert "| edit to \\ from | `tone_default` | `tone_light` | `tone_dark` |" in table
    assert "| `tone_default` | - | 50.0% | 100.0% |" in table  # an edit is never from the tone it asks for
    assert "| `tone_light` | 50.0% | - | 100.0% |" in table
    assert "| `tone_dark` | 25.0% | 75.0% | - |" in table
    # Every input already light: no row asks for it, yet it is the column the one row reads from.
    assert "| `tone_dark` | 25.0% |" in by_source_table({"tone_dark": {"tone_light": 0.25}})


def test_truncation_refuses_an_editor_in_the_list_before_evaluating_anything(tmp_path, tiny_fashion, tiny_judge,
                                                                              tiny_checkpoints, tiny_faces,  # noqa: F811
                                                                              capsys, monkeypatch):
    import training.evaluate.cli as evaluate_cli

    evaluated = []
    monkeypatch.setattr(evaluate_cli, "evaluate_class_conditional", lambda *a: evaluated.append(a))
    editor = tiny_stargan(tmp_path / "stargan.safetensors", tiny_faces)
    out = tmp_path / "r"
    assert run_evaluate(tiny_checkpoints[0], editor, "--data", f"fashion-mnist:{tiny_fashion}", "--judge", tiny_judge,
                        "--out", out, "--truncation", "0.5") == 2
    assert f"{editor} is a stargan editor" in capsys.readouterr().err
    assert evaluated == [] and not out.exists()  # the acgan before it was not evaluated only to be thrown away
