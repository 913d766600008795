"""coursekit: the helper package of the course on vanishing and exploding gradients.

It carries what a lesson is not about (data, models, the training loop, statistics hooks,
plots), so that the notebooks can show what they are about.
"""

from .data import class_names, data_root, ensure_files, load_data
from .diagnostics import (Profile, Verdict, diagnose, gradient_profile, time_step_grad_norms, verdict,
                          weight_grad_norms, weight_parameters)
from .monitor import Monitor, activation_stats, watched_layers
from .checklist import Finding, Report, doctor
from .mysteries import CAUSES, LEARNS, Mystery, Setup, mystery
from .exercises import check_function, claim
from .i18n import LANGUAGES, format_table, get_language, set_language, tr
from .models import MLP, SequenceClassifier, init_weights, make_sequence_task, mlp, rnn_classifier
from .precision import full_precision_gradient, lost_fraction, low_precision_gradient, overflow_fraction
from .tinytransformer import TinyTransformer, branch_layers, make_copy_task, token_cross_entropy, transformer
from .plots import (plot_activation_history, plot_grad_norm_over_steps, plot_grad_norms, plot_histograms,
                    plot_layer_distributions, plot_float_range, plot_losses, plot_magnitudes, plot_saturation, plot_time_step_grads,
                    plot_update_ratios, use_course_style)
from .runtime import get_device, get_seed, seed_everything, setup
from .training import History, evaluate, make_optimizer, train
from .widgets import explore_batchnorm, explore_clipping, explore_depth, explore_loss_scale

__version__ = "0.1.0"
