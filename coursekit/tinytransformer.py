"""Lesson 06's models: a small Transformer encoder (Post-LN or Pre-LN, with a choice of
residual-branch init) and a synthetic sequence task it learns on a CPU in seconds."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .i18n import tr
from .runtime import get_device
from .validate import check_choice, check_int, check_module

BRANCH_INITS = ("default", "gpt2", "zero")


class TinyTransformer(nn.Module):
    """Token and position embeddings, `depth` nn.TransformerEncoderLayer blocks, a linear head.

    norm_first=False: Post-LN, x <- LN(x + F(x))  (Vaswani et al. 2017, BERT)
    norm_first=True:  Pre-LN,  x <- x + F(LN(x)), and one LN before the head (GPT-2, Xiong et al. 2020)
    Input: token ids (batch, time). Output: logits (batch, time, vocab).
    """

    def __init__(self, depth, width, heads, vocab, seq_len, norm_first):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(seq_len, width))
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, dropout=0.0,
                                           batch_first=True, norm_first=norm_first)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False).layers
        self.final_norm = nn.LayerNorm(width) if norm_first else nn.Identity()
        self.head = nn.Linear(width, vocab)
        self.norm_first = norm_first

    def forward(self, tokens, keep_stream=None):
        """keep_stream: a list that receives the residual stream after the embedding and after each block."""
        x = self.embed(tokens) + self.position[:tokens.shape[1]]
        for block in self.blocks:
            if keep_stream is not None:
                keep_stream.append(x)
            x = block(x)
        if keep_stream is not None:
            keep_stream.append(x)
        return self.head(self.final_norm(x))


def branch_layers(model):
    """The last linear layer of each residual branch: attention's out_proj and the MLP's linear2."""
    check_module("model", model)
    return [layer for block in model.blocks for layer in (block.self_attn.out_proj, block.linear2)]


def transformer(depth=4, width=32, heads=4, vocab=16, seq_len=8, norm_first=False, branch_init="default", seed=None):
    """A TinyTransformer. branch_init sets the last layer of every residual branch:

    default : PyTorch's init
    gpt2    : N(0, (0.02 / sqrt(2 * depth))^2), as GPT-2 / nanoGPT (2 branches per block, so the
              stream's variance grows by about 0.02^2 per block instead of by the branch's own)
    zero    : weights and biases 0 (ReZero, Fixup, zero-gamma): every block starts as the identity
    """
    depth, width, heads = check_int("depth", depth), check_int("width", width), check_int("heads", heads)
    vocab, seq_len = check_int("vocab", vocab, low=2), check_int("seq_len", seq_len)
    check_choice("branch_init", branch_init, BRANCH_INITS)
    if width % heads:
        raise ValueError(tr("heads_divide", width=width, heads=heads))
    if seed is not None:
        torch.manual_seed(seed)
    model = TinyTransformer(depth, width, heads, vocab, seq_len, bool(norm_first))
    for layer in branch_layers(model):
        if branch_init == "gpt2":
            nn.init.normal_(layer.weight, 0.0, 0.02 / math.sqrt(2 * depth))
            nn.init.zeros_(layer.bias)
        elif branch_init == "zero":
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model.to(get_device())


def make_copy_task(n=2048, seq_len=8, vocab=16, seed=0):
    """Random token sequences (n, seq_len); the target at every position is the first token.
    Every position must find position 0 by attention: a task a bag of tokens cannot solve."""
    n, seq_len, vocab = check_int("n", n), check_int("seq_len", seq_len), check_int("vocab", vocab, low=2)
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, vocab, (n, seq_len), generator=g)
    return X, X[:, :1].expand(n, seq_len).clone()


def token_cross_entropy(logits, y):
    """Cross-entropy over every position: logits (batch, time, vocab), y (batch, time)."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())
