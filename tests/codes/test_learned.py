import pytest
import torch

from parm.codes import ConvEncoder, LearnedCode, LinearCode, MLPDecoder, MLPEncoder, code_from_spec, erasure_patterns


@pytest.mark.parametrize("encoder", ["mlp", "conv"])
@pytest.mark.parametrize("k,r,shape", [(2, 1, (1, 8, 8)), (3, 2, (3, 8, 8)), (4, 1, (1, 12, 10))])
def test_shapes(encoder, k, r, shape):
    code = LearnedCode(k, r, encoder=encoder, input_shape=shape, num_outputs=7)
    x = torch.rand(5, k, *shape)
    assert code.encode(x).shape == (5, r, *shape)
    outputs = torch.rand(5, k + r, 7)
    mask = torch.ones(k + r, dtype=torch.bool)
    mask[0] = False
    assert code.decode(outputs, mask).shape == (5, k, 7)


@pytest.mark.parametrize("encoder", [MLPEncoder(2, 1, 36), ConvEncoder(2, 1)])
def test_rgb_is_encoded_channel_by_channel(encoder):
    torch.manual_seed(0)
    x = torch.rand(3, 2, 3, 6, 6)
    changed = x.clone()
    changed[:, :, 1] += 1.0  # only the green channel of the inputs changes
    before, after = encoder(x), encoder(changed)
    assert torch.equal(before[:, :, 0], after[:, :, 0]) and torch.equal(before[:, :, 2], after[:, :, 2])
    assert not torch.allclose(before[:, :, 1], after[:, :, 1])


def test_architectures_follow_the_paper():
    conv = ConvEncoder(2, 1)
    convs = [m for m in conv.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.dilation[0] for c in convs] == [1, 1, 2, 4, 8, 1, 1]
    assert [c.kernel_size[0] for c in convs] == [3] * 6 + [1]
    assert convs[0].in_channels == 2 and all(c.out_channels == 40 for c in convs[:6]) and convs[-1].out_channels == 1
    linears = [m for m in MLPEncoder(2, 1, 784).modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(1568, 1568), (1568, 784)]
    linears = [m for m in MLPDecoder(2, 1, 10).modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(30, 20), (20, 20), (20, 20)]


def test_paper_initialisation():
    code = LearnedCode(2, 1, encoder="conv", input_shape=(1, 8, 8), num_outputs=10)
    fc = code.decoder.net[0]
    assert fc.bias.abs().sum() == 0 and abs(fc.weight.std().item() - 0.01) < 0.003
    assert all(m.bias.abs().sum() == 0 for m in code.encoder.modules() if isinstance(m, torch.nn.Conv2d))


def test_lost_outputs_reach_the_decoder_as_the_sentinel_and_originals_pass_through():
    code = LearnedCode(2, 1, input_shape=(1, 4, 4), num_outputs=3, sentinel=-7.0)
    outputs = torch.rand(2, 3, 3)
    mask = torch.tensor([True, False, True])
    fed = code.decoder_input(outputs, mask)
    assert torch.equal(fed[:, 1], torch.full((2, 3), -7.0)) and torch.equal(fed[:, [0, 2]], outputs[:, [0, 2]])
    decoded = code.decode(outputs, mask)
    assert torch.equal(decoded[:, 0], outputs[:, 0])
    assert torch.allclose(decoded[:, 1], code.decoder(fed)[:, 1])


def test_training_patterns():
    assert erasure_patterns(2, 1, parities_may_fail=True).tolist() == [[False, True, True], [True, False, True]]
    patterns = erasure_patterns(3, 2, parities_may_fail=True)
    lost = [tuple(i for i in range(5) if not p[i]) for p in patterns.tolist()]
    expected = [(i,) for i in range(3)] + [(i, j) for i in range(5) for j in range(i + 1, 5) if i < 3]
    assert sorted(lost) == sorted(expected)  # one or two erasures, never only parities


@pytest.mark.parametrize("encoder", ["mlp", "conv"])
@pytest.mark.parametrize("k,r", [(2, 1), (3, 2), (4, 3)])
def test_a_residual_encoder_starts_from_the_linear_codes_weighted_means(encoder, k, r):
    code = LearnedCode(k, r, encoder=encoder, input_shape=(3, 6, 6), num_outputs=5, residual=True)
    x = torch.rand(4, k, 3, 6, 6, dtype=torch.float64).float()
    weights = LinearCode(k, r).coefficients
    expected = torch.einsum("rk,bk...->br...", (weights / weights.sum(1, keepdim=True)).float(), x)
    assert torch.allclose(code.encode(x), expected, atol=1e-6)  # every input carried, before any training
    assert torch.allclose(code.encode(x)[:, 0], x.mean(1), atol=1e-6)  # the first parity is the plain mean
    code.encoder.net[-1].bias.data.fill_(0.5)  # the learned part adds to it
    assert torch.allclose(code.encode(x), expected + 0.5, atol=1e-6)


@pytest.mark.parametrize("residual", [False, True])
def test_spec_round_trip(residual):
    code = LearnedCode(3, 2, encoder="conv", input_shape=(3, 8, 8), num_outputs=10, sentinel=-1.0, residual=residual)
    again = code_from_spec(code.spec())
    assert isinstance(again, LearnedCode) and again.spec() == code.spec() and again.residual is residual
    again.load_state_dict(code.state_dict())
    x = torch.rand(2, 3, 3, 8, 8)
    assert torch.equal(again.encode(x), code.encode(x))
    spec = code.spec()
    del spec["residual"]  # a code.json written before the option existed
    assert code_from_spec(spec).residual is False
    with pytest.raises(ValueError, match="unknown encoder"):
        LearnedCode(2, 1, encoder="transformer", input_shape=(1, 8, 8), num_outputs=10)
