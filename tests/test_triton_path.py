"""The code a GPU runs, run here: ``model.kernels=triton`` sends every recurrence through the
Triton kernels by the real dispatch (under TRITON_INTERPRET=1 on a CPU), at the presets' shapes
(width 32 with 4 heads: head dim 8, which the sLSTM kernel once refused), and must train to the
same numbers as the PyTorch references."""

from collections import Counter

import pytest
import torch
from conftest import DEVICE, tiny_train_args
from test_model import ring_graph

from social_xlstm.cli import main
from social_xlstm.nn.model import SocialXLSTM, SocialXLSTMConfig

N, F, G, H, T = 5, 3, 2, 12, 12
# The presets' width and heads (the Los-loop preset differs from the demo's network only in inputs
# the kernels never see), and the option whose first block returns every step through the
# chunkwise kernel, with a pooling round before each block (the Los-loop preset until 2026-12-06).
SHAPES = {
    "presets": {},
    "pooled_blocks": {"day_of_week_inputs": False, "pool_every_block": True, "input_hops": 2, "interaction_blocks": 2},
}


@pytest.fixture
def triton_calls(monkeypatch) -> Counter:
    """Calls that reach each Triton entry point the training forward can take: the dispatch imports
    them when it runs one, so a kernel choice that went unheeded shows as none."""
    import social_xlstm_kernels.mlstm.triton_chunk as chunk
    import social_xlstm_kernels.slstm.triton_fused as fused

    calls = Counter()
    for module, name in ((fused, "slstm_sequence_triton"), (chunk, "mlstm_chunkwise_triton")):

        def counted(*args, _run=getattr(module, name), _name=name, **kwargs):
            calls[_name] += 1
            return _run(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def preset_model(kernels: str, **shape) -> SocialXLSTM:
    torch.manual_seed(0)
    config = SocialXLSTMConfig(
        num_sensors=N,
        num_features=F,
        num_targets=G,
        horizon=H,
        target_feature_index=(0, 1),
        hidden=32,
        encoder_heads=4,
        interaction_heads=4,
        kernels=kernels,
        **shape,
    )
    return SocialXLSTM(config)


@pytest.mark.slow  # the interpreter runs the kernels in numpy: a minute
@pytest.mark.triton
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_triton_kernels_train_the_presets_shapes_like_the_references(shape, triton_calls):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, T, N, F, generator=g).to(DEVICE)
    mask = (torch.rand(2, T, N, F, generator=g) > 0.1).to(DEVICE)
    time = torch.randn(2, T + H, 4, generator=g).to(DEVICE)
    graph = type(ring_graph(N))(*(t.to(DEVICE) for t in ring_graph(N)))
    results, calls = {}, {}
    for kernels in ("torch", "triton"):
        model = preset_model(kernels, **SHAPES[shape]).to(DEVICE)
        forecast = model(x, mask, time, graph)
        forecast.square().mean().backward()
        results[kernels] = (
            forecast.detach(),
            {name: p.grad for name, p in model.named_parameters() if p.grad is not None},
        )
        calls[kernels] = Counter(triton_calls)
        triton_calls.clear()
    assert calls["torch"] == Counter()
    assert calls["triton"]["slstm_sequence_triton"] > 0
    if shape == "pooled_blocks":  # its first block returns every step: the chunkwise kernel
        assert calls["triton"]["mlstm_chunkwise_triton"] > 0
    torch.testing.assert_close(results["triton"][0], results["torch"][0], atol=2e-5, rtol=1e-4)
    assert results["triton"][1].keys() == results["torch"][1].keys()
    for name, grad in results["torch"][1].items():
        torch.testing.assert_close(results["triton"][1][name], grad, atol=1e-4, rtol=1e-3, msg=name)


@pytest.mark.triton
def test_train_with_model_kernels_triton_from_the_cli(demo_dir, tmp_path, triton_calls):
    run_dir = tmp_path / "run"
    args = tiny_train_args(
        demo_dir,
        run_dir,
        "baselines=[]",
        "model.kernels=triton",
        "model.hidden=32",
        "model.encoder.heads=4",
        "model.interaction.heads=4",
        "trainer.limit_train_batches=2",
    )
    assert main(args) == 0
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert triton_calls["slstm_sequence_triton"] > 0  # the run's steps went through the kernels


def test_an_unknown_kernel_choice_is_refused(demo_dir, tmp_path, capsys):
    assert main(tiny_train_args(demo_dir, tmp_path / "run", "model.kernels=cuda")) == 2
    assert "model.kernels must be one of auto, triton, torch" in capsys.readouterr().err
