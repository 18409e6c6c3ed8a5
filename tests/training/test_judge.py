"""`python -m training judge`: the judge classifier of a dataset, trained on its real training split."""
import torch

import training.judge
from training.cli import main
from training.judge import load_judge


def test_the_judge_command_trains_on_one_thread_whatever_the_count_and_puts_the_count_back(tiny_fashion, tmp_path,
                                                                                           monkeypatch):
    seen_inside = set()  # the thread count at each forward of the judge while it trains and is tested
    real_forward = training.judge.JudgeNet.forward

    def watched(self, x):
        seen_inside.add(torch.get_num_threads())
        return real_forward(self, x)

    monkeypatch.setattr(training.judge.JudgeNet, "forward", watched)
    before = torch.get_num_threads()
    judges = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = tmp_path / f"judge-{threads}.safetensors"
            assert main(["judge", "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(out), "--epochs", "2"]) == 0
            assert torch.get_num_threads() == threads  # the caller's count is put back
            judges.append(load_judge(out))
    finally:
        torch.set_num_threads(before)
    assert seen_inside == {1}
    one, two = judges
    assert one.classes == two.classes and len(one.classes) == 10
    assert one.test_accuracy == two.test_accuracy
    for (name, a), (_, b) in zip(one.net.state_dict().items(), two.net.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
