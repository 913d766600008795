"""Messages and plot labels in the notebook's language.

Every text coursekit shows a student goes through `tr(key, **values)`. The language is
chosen once, in a lesson's setup cell, with `coursekit.setup(lang=...)`.
"""

import json
from pathlib import Path

from wcwidth import wcswidth

LANGUAGES = ("en", "ru", "zh", "pt", "fr")

MESSAGES = {
    "en": {
        # errors a student can trigger
        "bad_choice": "{name} must be one of {allowed}, got {value!r}",
        "bad_int": "{name} must be an integer >= {low}, got {value!r}",
        "bad_number": "{name} must be a number > 0, got {value!r}",
        "bad_number_ge0": "{name} must be a number >= 0, got {value!r}",
        "bad_type": "{name} must be {expected}, got {got}",
        "a_module": "a torch.nn.Module",
        "a_tensor": "a torch.Tensor",
        "scaler_type": "scaler must be None, a torch.amp.GradScaler or an object with its methods scale, unscale_, step, update and get_scale; got {value}",
        "heads_divide": "width must be a multiple of heads, got width={width}, heads={heads}",
        "std_needed": "init='normal' needs std (a number > 0), for example std=0.01",
        "std_unused": "std is only used with init='normal', got init={init!r}",
        "shape_mismatch": "X and y must have the same number of examples, got {nx} and {ny}",
        "empty_data": "{name} is empty: give at least one example",
        "no_layers": "found no layers to watch in {model}: the model needs Linear, Conv, RNN/LSTM/GRU or activation layers",
        "no_params": "{model} has no parameters with gradients: call loss.backward() first, or check requires_grad",
        "no_grad_yet": "no gradients recorded yet: run a forward and a backward pass first",
        "model_data_mismatch": "the model cannot be trained on X of shape {shape} with labels y of shape {y_shape}: {error}",
        "clip_format": "clip must be None, ('norm', max_norm) or ('value', clip_value), got {value!r}",
        # data
        "data_missing": (
            "Could not find {dataset}. Get it in one of three ways:\n"
            "  1. put the torchvision files in {root} (or point COURSEKIT_DATA at a folder that has them);\n"
            "  2. install Debian's package: sudo apt-get install dataset-fashion-mnist;\n"
            "  3. go online once: torchvision downloads it into {root}.\n"
            "The download failed with: {error}"
        ),
        "data_corrupt": "{path} is damaged or truncated ({error}). Delete it and load again to get a fresh copy.",
        # training
        "nan_stop": "Stopped at step {step}: the loss is {loss}. The run diverged; the history up to this step is returned.",
        # verdicts (coursekit/diagnostics.py)
        "verdict_depth": "{kind}: the back-propagated signal dL/dh at {first} is {ratio:.1e} x the one at {last} ({n} layers compared, {gain:.2g} per layer)",
        "verdict_time": "{kind} over time: the gradient reaching {first} is {ratio:.1e} x the one at {last} (input of {layer})",
        "verdict_zero": "vanishing: no gradient reaches {layer} (dL/dh is exactly 0 there)",
        "verdict_nonfinite": "exploding: the gradient contains NaN or Inf ({layer})",
        "verdict_loss_nonfinite": "exploding: the loss is {loss} already in the forward pass",
        "verdict_shallow": "healthy: {n} hidden layer(s), no depth for the gradient to vanish or explode through",
        "kind_healthy": "healthy",
        "kind_mild_vanishing": "mild vanishing",
        "kind_vanishing": "vanishing",
        "kind_mild_exploding": "mild exploding",
        "kind_exploding": "exploding",
        "time_step_n": "step {step}",
        "warn_input_scale": "warning: the inputs are not normalised (mean {mean:.3g}, std {std:.3g}); scale them to mean 0 and std about 1",
        "warn_update_large": "warning: at lr={lr:g} one step changes {layer}'s weights by {ratio:.1e} of their size (about 1e-3 is healthy): the learning rate is too large for these weights",
        "warn_update_small": "warning: at lr={lr:g} one step changes {layer}'s weights by only {ratio:.1e} of their size (about 1e-3 is healthy): the learning rate is too small for these weights",
        "layout_mismatch": "{layer} has batch_first={batch_first}, but its input of shape {shape} has {n} examples along the other axis: give the sequences as {layout}, or build the layer with batch_first={other}",
        "no_recurrent": "{model} has no recurrent layer (RNN, LSTM, GRU) whose input could be measured step by step",
        "gain": "gain",
        "pre_activation_note": "* output of a Linear/Conv layer (a pre-activation): the units <= 0 for every example, dead if a ReLU follows",
        # self-checks
        "check_pass": "✓ passed: {name} agrees with the reference on {n} random inputs",
        "check_fail": "✗ {name} differs from the reference on input {case}:\n  yours:    {got}\n  expected: {expected}",
        "check_error": "✗ {name} raised {error} on input {case}",
        "check_not_written": "✗ {name} is not written yet (it still raises NotImplementedError): write it in the cell above, then run this check again",
        "history_diverged": "History({steps} steps, diverged at step {step})",
        "history_finished": "History({steps} steps, final loss {loss:.4f})",
        "claim_ok": "✓ {text}",
        "claim_failed": "The lesson's claim did not hold: {text}",
        # the lessons' claims (ck.claim): statements their outputs show; no run-dependent numbers
        # -- lesson 01 claims --
        "l01_product": "a product of 50 factors with gain 1.1 grows over 10x; with gain 0.9 it shrinks below 1/10",
        "l01_deep_ratio": "N(0, 1) init: the gradient explodes towards the input, layer 1's is over 1000x the last layer's",
        "l01_xavier_healthy": "Xavier init: no explosion; the signal at layer 1 is within 20x of the last layer's (at most a mild vanishing)",
        "l01_nan": "the loss became NaN or Inf within 10 steps and training stopped",
        "l01_loss_grows": "before that, the loss grew more than 1000-fold",
        "l01_weights_grow": "and the weights' norm grew more than 1000-fold",
        "l01_gain": "gain per layer, g = sigma_w * sqrt(n * E[tanh'(z)^2]) from the activations: {predicted:.2f}; measured by backpropagation: {measured:.2f} per layer",
        "l01_gain_predicts": "the formula predicts the measured factor per layer (within 25%)",
        "l01_w_after": "||W|| after the step",
        "l01_equal_gain": "the same recurrent gain {gain} for all three",
        "l01_rnn_steps": "plain RNN: the gradient reaching the first time step is over 100x the one at the last step",
        "l01_rnn_length": "plain RNN: the total gradient grows over 100x from 10 to 100 time steps",
        "l01_gates_damp": "LSTM and GRU at the same gain: the gradient shrinks back in time instead of growing",
        "l01_lstm_flat": "LSTM at that gain: the total gradient does not grow with the sequence length",
        "l01_first_over_last": "||dL/dx_1|| / ||dL/dx_100|| at init, by recurrent gain:",
        "l01_gain_column": "gain",
        "l01_same_gain": "at gain 1.8 the plain RNN's gradient grows over a million-fold back in time, the LSTM's and the GRU's shrink",
        "l01_gates_explode_too": "at gain 6 the LSTM and the GRU explode too (ratio over 100)",
        "l01_default_vanishes": "with PyTorch's default init the gradient at step 1 vanishes in all three cells (below 1e-6 of step 100's)",
        "l01_clipped_rnn": "RNN, clipped at 1",
        "l01_rnn_nan": "plain RNN, SGD at lr 0.1: a huge first gradient and NaN within 5 steps",
        "l01_rnn_clip_finite": "clipped at norm 1, the same run stays finite",
        "l01_lstm_pytorch_init": "LSTM, PyTorch's init",
        "l01_gated_learn": "the LSTM and the GRU at gain 1.8 learn the task (test accuracy over 85%)",
        "l01_lstm_default_fails": "the LSTM with PyTorch's default init does not (under 65%)",
        "l01_penalties_fail": "L2 and L1 penalties do not stop this blow-up: those runs diverge too",
        "l01_finite": "a lower learning rate, clipping, max-norm and a good init all keep the run finite",
        "l01_row_norms": "norm of a unit's incoming weights at init, mean per layer (N(0, 1)): {norms}",
        "l01_clip_step": "clipped at norm 1, a step is at most lr × 1 long; the weights' norm at init is {norm:.0f}",
        "l01_diverged_runs": "the runs that diverged",
        "l01_finite_runs": "the runs that stayed finite",
        "l01_lr_gap": "the N(0, 1) net learns at lr 1e-4 (over 50%), not at 1e-3 (under 20%; chance is 10%); the Kaiming net at 1e-4 hardly learns (under 40%)",
        "l01_clip_lr": "clipped at 1, the N(0, 1) net does not learn at lr 0.01 (under 40%), and learns at lr 0.1 (over 50%)",
        "l01_cause": "tuned, the N(0, 1) net stays over 8 points behind the Kaiming net; max-norm learns (over 60%)",
        "l01_batch_mean": "a smaller batch does not make the gradient smaller (mean norm at B=8 vs B=2048)",
        "l01_batch_noise": "it makes it noisier: the spread of the norm at B=8 is over 3x that at B=2048",
        "l01_batch_diverges": "and the failing run diverges with a batch of 8 as well",
        # -- lesson 02 claims --
        "l02_hist_narrowest": "layer 1's gradient histogram is the narrowest of the four, at step 0 and after training",
        "l02_hist_ratio": "at step 0, layer 1's typical weight gradient is over 10x smaller than the output layer's",
        "l02_barely_move": "after training, layer 1's weights have changed (relative to their size) over 5x less than the output layer's",
        "l02_all_trained": "all layers trained",
        "l02_layer1_frozen": "layer 1 frozen",
        "l02_control_moves": "in the control (tanh, Xavier), layer 1 changes over 10x more than the sigmoid net's layer 1, and at least half as much as its own output layer",
        "l02_frozen_both": "freezing layer 1 costs each network under 10 points, and the two costs are within 3 points of each other: the test cannot tell them apart",
        "l02_derivatives": "the hand-written derivatives σ(1 - σ) and 1 - tanh² agree with autograd to 1e-6",
        "l02_quarter": "σ' is at most 1/4 and tanh' at most 1, both reached at z = 0",
        "l02_derivative_error": "max |hand - autograd|:  sigmoid {sigmoid:.1e}   tanh {tanh:.1e}",
        "l02_derivative_peaks": "max sigmoid' = {sigmoid:.4f} at z = {at:.2f};   max tanh' = {tanh:.4f}",
        "l02_no_escape": "averaged over inputs x ~ N(0, 1), the factor |w σ'(wx)| stays below 0.4 for every w",
        "l02_saturated_normal": "N(0, 1) init: the weights are not small (over a quarter have |w| > 1), yet over half of layer 1's units are saturated",
        "l02_xavier_unsaturated": "Xavier init: under 5% of the units are saturated in every layer and mean σ' stays above 0.15, close to 1/4",
        "l02_gain_grows": "the backward gain g = std(w) sqrt(64) rms(σ') of the N(0, 1) layers is over 2x Xavier's, saturation and all",
        "l02_scale_raises_gain": "the gradient ratio rises with the weight scale, from vanishing (Xavier) to above 1 (s = 3)",
        "l02_scale_beats_xavier": "N(0, 1) trains the deep sigmoid net far better than Xavier (over 30 points more test accuracy)",
        "l02_scale_limit": "past s = 1 it gets worse again (s = 3: over 20 points lower), and no scale reaches the remedies of the table",
        "l02_depth_deep": "no saturation needed: at depth 32, layer 1's gradient is over 1000x smaller than the last layer's, in the linear and in the ReLU net",
        "l02_depth_shallow": "at depth 2 it is not: the ratio is above 0.1 in both",
        "l02_rnn": "tanh RNN: the gradient reaching the first of 50 time steps is over a million times smaller than at the last step",
        "l02_sigmoid_vanishes": "8-layer sigmoid net: the gradient vanishes, layer 1's is over 100x smaller than the last layer's",
        "l02_remedies_flow": "with every remedy, layer 1's gradient is within 100x of the last layer's",
        "l02_remedies_train": "every remedy trains (test accuracy over 60%); the sigmoid net does not (under 20%)",
        "l02_jacobian_matches": "the hand-written product of the blocks' Jacobians equals autograd's dx_L/dx_0",
        "l02_jacobian_skip": "through 20 plain sigmoid blocks dx_L/dx_0 shrinks below 1e-6; with skip connections its norm stays above 0.1",
        "l02_relu_xavier_shrinks": "ReLU with Xavier's init: the signal at layer 8 is under a quarter of layer 1's; with Kaiming's it stays within 2x",
        "l02_skip_spike": "sigmoid + skip: the residual stream averages over 2 per unit, the first step moves the logits by over twice their spread, and in the first 20 steps the loss rises to over 2x its start",
        "l02_skip_controls": "at a 10x smaller learning rate the first step moves them by less than their spread and there is no spike (under 1.2x the start); with tanh in the branch the stream is near 0 and the peak under half as high",
        "l02_first_step_moves": "step 1 moves z by",
        "l02_loss_at_step_0": "loss at step 0",
        "l02_max_loss_20": "highest loss, steps 0-19",
        "l02_plain_blocks": "plain blocks",
        "l02_skip_blocks": "with skips",
        "l02_hand_vs_autograd": "relative error, by hand vs autograd",
        "l02_forget_bias": "{cell}, forget bias {bias}",
        "l02_update_bias": "{cell}, update bias {bias}",
        "l02_relu_stays_dead": "ReLU: layers 3 and 4 are 100% dead on the probe images, at step 0 and after 400 steps: the network is a constant function",
        "l02_leaky_recovers": "LeakyReLU: from a layer over 90% stuck on the negative side, every layer ends with under half of its units there",
        "l02_dead_at_start": "dead at step 0",
        "l02_dead_at_end": "dead at the end",
        "l02_leaky_learns": "the LeakyReLU net learns (test accuracy over 60%), the ReLU net does not (under 20%)",
        "l02_gates_closed": "at their default init, LSTM and GRU also lose the gradient: over 10^4 times smaller at the first step than at the last",
        "l02_lstm_open": "LSTM with its forget gate biased open: the gradient at the first step is within 100x of the last step's",
        "l02_open_gate_learns": "trained, the LSTM with its forget gate open learns the task (test accuracy over 85%); at PyTorch's init it does not (under 65%)",
        "l02_saturated": "saturated",
        "l02_dead_units": "fraction of dead units",
        # -- lesson 03 claims --
        "l03_zero_identical": "zero init: after 100 SGD steps every hidden weight is still exactly 0, and all hidden units are identical",
        "l03_const_identical": "constant init (0.05): after 100 SGD steps the units of each hidden layer still have identical weights and outputs",
        "l03_zero_stuck": "zero init learns only the output bias: its loss stays within 0.05 of ln 10 = 2.303",
        "l03_random_breaks": "a random init (Xavier) breaks the symmetry and learns: test accuracy over 70%, both constant inits under 25%",
        "l03_small_shrinks": "N(0, 0.01): the activations shrink layer by layer; the last layer's std is over 20x smaller than the first's, and most of its values are near 0",
        "l03_large_saturates": "N(0, 0.05): the activations pile up at -1 and +1, over 15% saturated in every layer (under 1% with N(0, 0.01))",
        "l03_gain_both_sides": "backward gain per layer: below 0.6 with N(0, 0.01), above 1 with N(0, 0.05) despite the saturated units",
        "l03_forward_gain": "forward gain",
        "l03_backward_gain": "backward gain",
        "l03_predicted": "predicted",
        "l03_backward_formula": "over the funnel, the forward and the backward gains are within 10% of the products of sqrt(fan_in σ²) and sqrt(fan_out σ²)",
        "l03_xavier_between": "1/fan_in keeps the forward signal and shrinks the gradient; 1/fan_out keeps the gradient and grows the signal; Xavier lies between",
        "l03_train_accuracy": "accuracy on the 20 images",
        "l03_overfit": "overfitting 20 images: Xavier reaches a loss under 0.05 and 100%; N(0, 0.01) and N(0, 0.05) stay above 0.3 and under 90%",
        "l03_small_net_forgives": "N(0, 0.01) trains a 1-hidden-layer net (loss under 1.0) but not a 6-layer one (loss stays above 2.2)",
        "l03_initial_loss_bad": "N(0, 1) init: the initial loss is over 3x the expected ln 10 = 2.303",
        "l03_logits_big": "its logits have a std over 5, and the softmax puts over half of its mass on one class",
        "l03_initial_loss_fixed": "last layer scaled down, bias 0: the initial loss is within 0.1 of ln 10",
        "l03_saturation_image": "N(0, 1): over 80% of the hidden values are saturated (|h| > 0.99); with W_1/√784, under 5%",
        "l03_hockey_stick": "N(0, 1): the loss falls by over half within the first 50 steps (the hockey stick)",
        "l03_logit_std": "logit std",
        "l03_test_loss": "test loss",
        "l03_share_wrong": "wrong",
        "l03_wrong_margin": "their margin",
        "l03_product": "wrong × margin",
        "l03_hockey_learns": "N(0, 1): the logits' spread stays within 25% of its start while test accuracy rises from under 15% to over 40% by step 50",
        "l03_loss_is_margin": "at every step shown, the loss is within 15% of (share of wrong answers) × (their mean margin)",
        "l03_hockey_cost": "and after 300 steps its loss is still over 2x that of the fixed inits",
        "l03_sqrt_k": "std(X W) is within 5% of √k for k = 10, 100, 1000, and within 5% of 1 once W is divided by √k",
        "l03_relu_gain": "20 ReLU layers: with std 1/√fan_in the second moment shrinks over 1000x; with √2/√fan_in it stays within 3x of 1",
        "l03_conv_fans": "Conv2d: fan_in = C_in·k_h·k_w and fan_out = C_out·k_h·k_w",
        "l03_formulas_match": "LeCun, Xavier and Kaiming written by hand match torch.nn.init within 3% (sampling error), for Linear and Conv2d",
        "l03_default_uniform": "PyTorch's default for nn.Linear and nn.Conv2d: weights and biases fill [-√k, √k] with k = 1/fan_in, and the weights' std is within 3% of √(k/3)",
        "l03_deep_side_by_side": "10-layer tanh net: Xavier and Kaiming train (loss under 0.8); N(0, 1), N(0, 0.01) and N(0, 0.05) do not (loss above 1.8)",
        "l03_deep_default": "PyTorch's default learns (loss under 2.1), but slower than Xavier and Kaiming",
        "l03_deep_gradients": "at init, N(0, 0.01), N(0, 0.05) and PyTorch's default lose the gradient towards the input (layer 1 under 1/100, 1/100, 1/10 of layer 10's); N(0, 1)'s grows (over 3x); Xavier and Kaiming stay between 0.1 and 3",
        "l03_ratio_follows_lr": "a decade of learning rate moves the average update:data ratio by between 0.6 and 1.4",
        "l03_ratio_minus_3": "the run whose ratio is within 0.5 of -3 ends within 20% of the best loss of the sweep; the ten times slower run over 1.5x above it",
        "l03_ratio_too_fast": "at a learning rate of 1, a layer's ratio is above -1 and the loss ends above 5",
        "l03_mean_ratio": "mean ratio",
        "gradient_entries": "gradient entries (float32)",
        "float_window": "what {dtype} keeps at S = {scale:g}",
        "float_lost": "lost to 0: {lost:.1%}, inf: {overflow:.1%}",
        "loss_scale_title": "the gradient of one batch, back-propagated in low precision",
        # -- lesson 06 --
        "l06_hand_vs_pytorch": "norm_first={norm_first!s:5}  max |by hand - PyTorch| = {error:.1e}",
        "l06_post_ln": "Post-LN",
        "l06_post_ln_warmup": "Post-LN, warmup {steps}",
        "l06_pre_ln": "Pre-LN",
        "l06_chance": "chance: ln 16",
        "l06_post_fails": "Post-LN without warmup stays at chance: its loss ends within 0.15 of ln 16 and its test accuracy under 20%",
        "l06_warmup_or_pre": "with 150 warmup steps Post-LN learns, and Pre-LN learns without warmup: test accuracy over 90% for both",
        "l06_depth": "depth",
        "l06_block_1": "block 1",
        "l06_last_block": "last block",
        "l06_block": "block",
        "l06_block_n": "block {block}",
        "l06_top": "top",
        "l06_init_grads_title": "gradient norm of each block's parameters at init, depth {depth}",
        "l06_post_init_flat": "at init, Post-LN's last block and first block get gradients within a factor 2 of each other, at every depth from 2 to 12",
        "l06_pre_init_shrinks": "Pre-LN's last-block gradient shrinks with depth (depth 12: under 0.7x depth 2's, and under half of its own first block's); Post-LN's last block gets over 2x Pre-LN's at depth 12",
        "l06_first_step": "Adam's first step, lr 0.006: median |Δw| / lr = {median:.2f}, for gradients from {low:.0e} to {high:.0e}",
        "l06_qk_title": "gradient of the attention's queries and keys, during training",
        "l06_spread": "spread across positions",
        "l06_adam_unit_step": "at Adam's first step the median weight moves by the learning rate (within 10%), whatever its gradient",
        "l06_qk_vanishes": "Post-LN without warmup: by step 150 the query/key gradient is under 1/100 of its start; with warmup it is over 1/10 of its start",
        "l06_positions_collapse": "after training, the failing net's top three stream vectors have a spread across positions under 0.01: every position carries the same vector; the nets that learned keep more than that",
        "l06_stream_std": "std of the stream",
        "l06_stream_title": "Pre-LN, 12 blocks: the residual stream at init",
        "l06_stream_growth": "std(top) / std(embedding)",
        "l06_grad_last_first": "gradient, last block / block 1",
        "l06_identity": "zero-init: max |block(x) - x| over the 12 blocks = {error:.1e}",
        "l06_stream_grows": "with PyTorch's default init the Pre-LN stream's std grows over 3x in 12 blocks; with GPT-2's init and with zero-init it stays within 10% of its start",
        "l06_zero_identity": "with zero-init every block is exactly the identity at init",
        "l06_logit_std": "logit std",
        "l06_max_weight": "largest weight",
        "l06_logits_grow": "unscaled, the logits' std is √d_k (within 10%); divided by √d_k, it is 1 (within 10%), for d_k = 4 to 256",
        "l06_softmax_saturates": "unscaled at d_k = 256, the largest softmax weight averages over 0.8 and the softmax's Jacobian is under half the scaled one's",
        "l06_smallest_subnormal": "smallest subnormal",
        "l06_smallest_normal": "smallest normal",
        "l06_cast_only": "float32 gradient cast to float16",
        "l06_lost_to_zero": "lost to 0",
        "l06_inf": "inf",
        "l06_fp16_underflow": "back-propagated in float16, over 30% of the gradient's entries are 0, over twice as many as casting the float32 gradient loses",
        "l06_bf16_keeps": "back-propagated in bfloat16, under 0.1% of them are lost",
        "l06_scale_window": "with the loss scaled by 2^10, float16 loses under 1%; scaled by 2^32, some entries overflow to inf",
        "l06_scalers": "max |loss(HandScaler) - loss(GradScaler)| = {gap:.1e};  skipped steps: {skipped};  S: {first:g} after step 0, {last:g} at the end;  final loss {loss:.3f}",
        "l06_scale_title": "the loss scale S, step by step",
        "l06_scaler_matches": "the hand-written scaler and torch.amp.GradScaler give the same loss (to 1e-6), the same scale and skip the same steps, at least one",
        "l06_clip_order": "clipped at 0.1, the norm of the true gradient: unscale, then clip: {right:.2e};  clip, then unscale: {wrong:.2e}",
        "l06_clip_after_unscale": "unscale_ then clip gives the threshold 0.1; clipping the scaled gradient gives 0.1 / S (S = 2^16)",
        "l03_unit_title": "{name}, unit {unit}",
        "init_zeros": "zeros",
        "init_constant": "constant {value}",
        "init_pytorch_default": "PyTorch default",
        "l03_max_ratio": "largest layer's ratio",
        "l03_gain_1_shrinks": "gain 1: the activations' std at layer 8 is under half of layer 1's, and the gradient shrinks towards the input (ratio under 0.7)",
        "l03_gain_5_3_balances": "gain 5/3: the activations keep their std within 25%, and the gradient changes by under 3x over the 8 layers",
        "l03_gain_3_grows": "gain 3: over 20% of a layer's units are saturated, and the gradient grows over 4x towards the input",
        "l03_gain_title": "gain {gain}",
        "l03_gain": "gain",
        "l03_most_saturated": "most saturated layer",
        "l03_dead_unit_grad": "max |∂L/∂W| of the dead units = {grad}",
        "l03_update_ratio": "update:data ratio: all of Xavier's layers stay between -3.5 and -1.5; N(0, 0.05)'s first layer stays below -4.5",
        "l03_dead_after_step": "one SGD step with lr=2 leaves over 15% of the ReLU units dead, up from under 5%",
        "l03_dead_no_gradient": "a dead unit's incoming weights get exactly zero gradient: nothing pulls it back",
        "l03_residual_batchnorm": "on the failing N(0, 0.05) net, residual connections and BatchNorm each bring the loss under 0.8 (plain SGD stays above 2.2)",
        "l03_adam": "Adam (lr=0.001) gets it learning too: loss under 2.1",
        "l03_white_columns": "all-white columns (nearly dead units)",
        # -- lesson 04 claims --
        "l04_match_train": "training mode: the hand-written BatchNorm matches nn.BatchNorm1d (float64) to 1e-6 at every step: output, running mean, running variance",
        "l04_match_eval": "eval mode: with the running statistics it matches nn.BatchNorm1d to 1e-6, and the running statistics stay unchanged",
        "l04_variance": "nn.BatchNorm1d normalises with the biased batch variance (divide by B) and stores the unbiased one (divide by B-1) in running_var",
        "l04_momentum_rule": "with running_mean started at 5, one step with momentum=0.1 gives 0.9 * old + 0.1 * batch mean, not 0.1 * old + 0.9 * batch mean: PyTorch's momentum is the weight of the new batch",
        "l04_momentum_noise": "momentum=0.9 in PyTorch makes the running mean follow each batch: it fluctuates over 3x more than with 0.1",
        "l04_gradcheck": "torch.autograd.gradcheck passes on the hand-written forward (float64)",
        "l04_rel_error": "autograd and the hand-written backward formula agree with finite differences to a relative error below 1e-7",
        "l04_bug_caught": "treating the batch mean and variance as constants gives a relative error above 1e-2: the check catches the bug",
        "l04_price_train": "training mode: the same image gets different outputs in two different batches",
        "l04_price_eval": "eval mode: its output does not depend on the batch",
        "l04_eval_same": "with model.eval(), the test accuracy is the same for shuffled and class-sorted batches (over 60%)",
        "l04_forgot_eval": "without model.eval(), on class-sorted batches the accuracy falls to less than half",
        "l04_batch1_error": "nn.BatchNorm1d refuses a batch of one example in training mode (ValueError)",
        "l04_batch1_degenerate": "with a batch of one, the hand-written BatchNorm returns beta for any input, and the input's gradient is 0",
        "l04_bias_useless": "the bias of a Linear layer followed by BatchNorm gets no gradient (over 10000x smaller than the weights')",
        "l04_mean_per_feature": "mean per feature (min .. max)",
        "l04_std_per_feature": "std per feature (min .. max)",
        "l04_running_unchanged": "running statistics unchanged",
        "l04_y_biased": "y with the biased variance",
        "l04_y_unbiased": "y with the unbiased variance",
        "l04_running_biased": "running_var = biased variance",
        "l04_running_unbiased": "running_var = unbiased variance",
        "l04_error_vs_finite_differences": "relative error vs finite differences",
        "l04_grad_autograd": "autograd",
        "l04_grad_detached": "autograd, mean and var detached",
        "l04_grad_formula": "the formula",
        "l04_gamma_beta_error": "dL/dgamma, dL/dbeta: the formula vs autograd, relative error = {error:.1e}",
        "l04_two_batches": "batch A: {a}  batch B: {b}   max |difference| = {gap:.1e}",
        "l04_eval_shuffled": "eval mode, shuffled batches",
        "l04_eval_by_class": "eval mode, one class per batch",
        "l04_train_shuffled": "train mode, shuffled batches",
        "l04_train_by_class": "train mode, one class per batch",
        "l04_changed_without_eval": "predictions that change without eval(): {share:.1%}",
        "l04_in_eval_mode": "in eval mode:",
        "l04_ours_two_inputs": "ours, two different inputs:",
        "l04_gradient": "gradient:",
        "l04_fold_gap": "max |difference of the logits| = {gap:.1e},  BatchNorm layers left: {left}",
        "l04_statistics_over": "mean and var over",
        "l04_ours_vs_torch": "max |ours - torch|",
        "l04_layernorm_alone": "LayerNorm of one example alone vs within its batch: max |difference| = {gap:.1e}",
        "l04_sigmoid_grads": "at init, the deep sigmoid net's gradient vanishes towards the input; with BatchNorm the signal at layer 1 stays within 5x of the last layer's",
        "l04_deep_sigmoid": "the plain deep sigmoid net stalls (loss above 2.2); with BatchNorm it trains (test accuracy over 60%)",
        "l04_high_lr": "at lr=2 the plain ReLU net fails (it diverges, or its units die and the loss stays above 2.2); with BatchNorm it trains (test accuracy over 60%)",
        "l04_bad_init": "with N(0, 0.01) init the plain net stalls (loss above 2.2); with BatchNorm it trains (test accuracy over 60%)",
        "l04_batch1_2d": "nn.BatchNorm2d trains on a single image without an error: it normalises each channel over the image's pixels",
        "l04_fold_no_bias": "folding also works for a Linear layer built with bias=False (to 1e-4)",
        "l04_started_at_5": "running_mean started at 5, one step:",
        "l04_spread": "{name}: std of running_mean over the last 40 steps = {spread:.3f}   (theory √(m / (2 - m)) · σ/√B = {theory:.3f})",
        "l04_one_image": "BatchNorm2d, one 8x8 image in training mode: output {shape}, largest |mean per channel| = {mean:.0e}",
        "l04_fold_no_bias_gap": "Linear(bias=False) + BatchNorm1d, folded: max |difference| = {gap:.1e}",
        "l04_fold": "BatchNorm folded into the Linear layers gives the same logits in eval mode (to 1e-4), with no BatchNorm layer left",
        "l04_variants": "hand-written BatchNorm2d, LayerNorm, InstanceNorm2d and GroupNorm, each averaging over its own axes, match PyTorch's to 1e-5",
        "l04_layer_norm_alone": "LayerNorm gives an example the same output alone as in its batch",
        "l04_instance_tracked": "InstanceNorm2d gives the same output in training and eval mode by default, and not with track_running_stats=True",
        "l04_affine_shape": "{layer}: γ and β of shape {shape}",
        "l04_instance_modes": "InstanceNorm2d(track_running_stats={tracked}): max |training - eval| = {gap:.1e}",
        "l04_channel_axis": "channel (C)",
        "l04_example_axis": "example (N)",
        # -- lesson 05 claims --
        "l05_value_turns": "2-D: clip by value turned the gradient by more than 20°; clip by norm kept its direction (under 0.01°)",
        "l05_value_turns_real": "the failing network's gradient: clip by value at 1 turns it by more than 30°; clip by norm by less than 0.1°",
        "l05_seed_fails": "seed 004's pseudo-code fails the check against clip_grad_norm_",
        "l05_hand_matches": "the hand-written clip by norm agrees with clip_grad_norm_ on every random gradient",
        "l05_seed_inverts": "seed 004's version enlarges a gradient already below max_norm and shrinks a large one far below max_norm",
        "l05_unclipped_nan": "without clipping, the loss becomes NaN or Inf within 10 steps",
        "l05_clipped_finite": "clipped at the threshold read off the healthy norms, the same run stays finite for all 300 steps",
        "l05_clipped_every_step": "the failing run hits the threshold at over 90% of its steps; the healthy run at under 25%",
        "l05_insurance": "clipping leaves the healthy run's test accuracy within 3 points of the unclipped one",
        "l05_too_low": "threshold 1: finite, but test accuracy stays under 40%",
        "l05_middle": "thresholds between 3 and 30: the best one reaches a test accuracy over 50%",
        "l05_too_high": "thresholds 100 and 1000: finite, but the network dies (test accuracy under 20%)",
        "l05_dead": "at thresholds 100 and 1000, over half of the units of some layer are dead at the end",
        "l05_returned_before": "clip_grad_norm_ returns the norm before clipping; after it, every step's norm is at most the threshold",
        "l05_norm_type": "norm_type=inf scales the gradient so that its largest entry is max_norm and keeps its direction; clip_grad_value_ does not",
        "l05_nonfinite_default": "by default an Inf in one entry turns the gradient into NaN and zeros without any error",
        "l05_nonfinite_error": "with error_if_nonfinite=True, clip_grad_norm_ raises a RuntimeError instead",
        "l05_below_threshold": "inputs with a norm below max_norm",
        "l05_both_branches": "the random inputs test both branches: some norms are below max_norm, some above",
        "l05_spike_clipped": "the healthy net at lr=0.5, clipped at the same threshold: finite, clipped on under 10% of its steps, test accuracy over 60%",
        "l05_spike_unclipped": "without clipping the same run diverges, or at best does no better than the clipped one",
        "l05_nan": "a NaN entry makes the total norm NaN and every entry NaN; error_if_nonfinite=True raises on it too",
        "l05_before_backward": "clipping before backward() finds no gradients: it returns 0 and the gradient that follows is not clipped",
        "l05_angle": "angle to g",
        "l05_steps_clipped": "steps clipped",
        "l05_above_threshold": "steps above the threshold",
        "l05_dead_max": "dead units (worst layer)",
        "l05_norm_before": "norm before clipping",
        "l05_norm_after": "norm after clipping",
        # explorers (coursekit/widgets.py): controls, plot labels, the text shown without a kernel
        "bad_range": "{name} must be between {low} and {high}, got {value!r}",
        "explorer_static": "Interactive explorer: run this cell in JupyterLab to use its controls (the picture shows the default setting).",
        "depth": "depth",
        "activation": "activation",
        "init": "init",
        "learning_rate": "learning rate",
        "with_bn": "with BatchNorm",
        "without_bn": "without BatchNorm",
        "clip_mode": "clipping",
        "clip_none": "no clipping",
        "clip_value": "by value",
        "clip_norm": "by norm",
        "activation_std": "std of the activations",
        "activation_histograms": "Activation histograms (exact zeros left out)",
        "per_layer": "Per layer",
        "grad_norm_before_clip": "Gradient norm (before clipping)",
        # plots
        "layer": "layer",
        "step": "step",
        "step_n": "step {step}",
        "max_difference": "max |difference|",
        "layer_n": "layer {layer}",
        "share": "share",
        "after_training": "after training",
        "log10_magnitude": "log10 |value|",
        "loss": "loss",
        "grad_norm": "gradient norm",
        "grad_norm_per_layer": "Weight-gradient norm per layer",
        "signal_rms": "rms of dL/dh",
        "signal_per_layer": "Back-propagated signal per layer",
        "activations": "Activations",
        "gradients": "Gradients",
        "value": "value",
        "count": "count",
        "loss_curves": "Training loss",
        "saturation": "Saturated units (|h| > {threshold}): white = saturated",
        "unit": "unit",
        "example": "example",
        "update_ratio": "Update:data ratio  log10(std(update) / std(weight))",
        "healthy_level": "≈ -3 (healthy)",
        "time_step": "time step t",
        "grad_per_step": "‖∂L/∂x_t‖ per time step",
        "below_floor": "0 or below 1e-30 (drawn at 1e-30)",
        "threshold": "threshold",
        "test_accuracy": "test accuracy",
        "final_loss": "final loss",
        "nan_at_step": "NaN/Inf at step {step}",
        "finite": "finite",
        "mean": "mean",
        "saturated": "saturated",
        "dead": "dead",
        "near_zero": "near 0",
        "spread": "std over batches",
    },
}


_language = "en"
_tables = {}
_plot_labels_in_english = False

# the keys that label plots (axis labels, titles, legends)
PLOT_LABELS = {"layer", "step", "loss", "grad_norm", "grad_norm_per_layer", "signal_rms", "signal_per_layer", "activations", "gradients", "value",
               "count", "loss_curves", "saturation", "unit", "example", "update_ratio", "healthy_level",
               "time_step", "grad_per_step", "threshold",
               "with_bn", "without_bn", "clip_none", "clip_value", "clip_norm", "activation_std", "grad_norm_before_clip",
               "activation_histograms", "per_layer",
               # the lessons' own axis labels and legends
               "l02_saturated", "l02_dead_units", "after_training", "log10_magnitude", "layer_n", "share", "l03_gain_title", "saturated", "dead", "l02_dead_at_start", "l02_dead_at_end", "l05_angle", "l05_dead_max", "l05_norm_before", "l05_norm_after",
               "l05_steps_clipped", "l01_equal_gain", "l01_clipped_rnn", "l01_lstm_pytorch_init", "l01_diverged_runs",
               "l01_finite_runs", "below_floor", "l03_unit_title", "init_zeros", "init_constant", "init_pytorch_default", "gradient_entries", "float_window", "float_lost", "loss_scale_title", "l06_post_ln", "l06_post_ln_warmup", "l06_pre_ln", "l06_chance", "l06_block", "l06_init_grads_title", "l06_qk_title", "l06_stream_std", "l06_stream_title", "l06_scale_title", "l04_channel_axis", "l04_example_axis"}


def set_language(lang):
    """Choose the language of coursekit's messages and plot labels."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    global _language
    _language = lang
    set_plot_labels_in_english(False)


def get_language():
    return _language


def messages(lang):
    """The message table of `lang`: English is above; the others are in locales/<lang>.json."""
    if lang == "en":
        return MESSAGES["en"]
    if lang not in _tables:
        path = Path(__file__).with_name("locales") / f"{lang}.json"
        _tables[lang] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return _tables[lang]


def set_plot_labels_in_english(on):
    """Draw plot labels in English (used when no font can draw the notebook's language)."""
    global _plot_labels_in_english
    _plot_labels_in_english = bool(on)


def tr(key, **values):
    """The message `key` in the current language (English where it is not translated)."""
    english_only = _plot_labels_in_english and key in PLOT_LABELS
    text = MESSAGES["en"][key] if english_only else messages(_language).get(key, MESSAGES["en"][key])
    return text.format(**values)


def display_width(text):
    """Columns a text takes in a terminal or a notebook's monospace output: a CJK character takes two."""
    width = wcswidth(text)
    return width if width >= 0 else len(text)


def format_table(rows, gap=2):
    """Rows of cells as lines of text: the first column left-aligned, the others right-aligned, each
    column as wide as its widest cell by display width (not by character count), `gap` spaces apart."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(display_width(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    lines = []
    for row in rows:
        cells = [row[0] + " " * (widths[0] - display_width(row[0]))]
        cells += [" " * (gap + widths[i] - display_width(cell)) + cell for i, cell in enumerate(row[1:], 1)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)
