import asyncio
import threading

import torch

from app.offload import INLINE_MAX_VALUES, encode_images


def encoder_thread(images: torch.Tensor, tag: str) -> tuple[str, str]:
    return threading.current_thread().name, tag


def test_tiny_encodings_run_inline_and_larger_ones_off_the_event_loop():
    async def main() -> tuple[tuple[str, str], tuple[str, str], str]:
        tiny = torch.zeros(1, 28, 28, 1, dtype=torch.uint8)
        large = torch.zeros(1, 128, 128, 3, dtype=torch.uint8)
        assert tiny.numel() <= INLINE_MAX_VALUES < large.numel()
        return (await encode_images(encoder_thread, tiny, "tiny"), await encode_images(encoder_thread, large, "large"),
                threading.current_thread().name)

    (tiny_thread, tiny_tag), (large_thread, large_tag), loop_thread = asyncio.run(main())
    assert (tiny_tag, large_tag) == ("tiny", "large")  # the extra arguments reach the encoder
    assert tiny_thread == loop_thread
    assert large_thread != loop_thread
