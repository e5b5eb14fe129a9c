"""The two ways a GAN enlarges what the classifier learns from.

wgan:  a class-conditional generator trained against a projection critic with the WGAN-GP objective
       (Gulrajani et al. 2017: lambda=10, n_critic=5, Adam lr 1e-4, betas (0.5, 0.9)) on the training
       patches; it then draws labelled synthetic patches that join the classifier's training set.
ssgan: the classifier itself is the discriminator, with K real classes and an implicit fake class
       (Odena 2016; Salimans et al. 2016); it learns from the labelled pixels, from the raster's
       unlabelled pixels and from generated patches, the generator trained by feature matching. Real
       and generated patches never share a BatchNorm batch, and the BatchNorm statistics used at
       inference are re-estimated on real patches alone.
       ENTROPY_WEIGHT > 0 adds the conditional-entropy term of Dai et al. 2017 ("Good semi-supervised
       learning that requires a bad GAN") on the unlabelled patches; off by default (it did not help on
       Indian Pines in a 2-seed trial, see bench/RESULTS-indian-pines.md).
"""
import math
import time

import numpy as np

from .sampling import gather_patches
from .errors import Diverged
from .training import eta_text, random_dihedral

N_CRITIC = 5
GP_WEIGHT = 10.0
UNLABELLED_WEIGHT = 1.0  # weight of the real/fake (unsupervised) term of the SSGAN discriminator
ENTROPY_WEIGHT = 0.0     # weight of the conditional-entropy term on unlabelled patches (ssgan)
WGAN_STEPS = 200         # automatic generator updates of the WGAN-GP
SSGAN_STEPS = 550        # automatic ssgan steps (each one labelled + unlabelled + fake batch; round 14)
MIXUP_RATIO = 2.0        # automatic SYNTHETIC_RATIO of GAN mixup (round 10: 2 fresh mixes per real sample beat 1)
FEW_LABELS = 20          # GAN mixup-if-few: mixup when the median class has at most this many training pixels
NONE_IF_HEAD = 0.5       # GAN ssgan with many labels keeps GAN none where its head weight reaches this (round 30)
MANY_LABELS = 20         # GAN ssgan tries GAN none first from this many training pixels in the median class (round 31)


def median_class(counts):
    """Median training pixels per class, classes without any left out; None when no class has any."""
    counts = np.asarray(counts)
    return float(np.median(counts[counts > 0])) if counts.any() else None


def resolve_gan_mode(mode, counts, from_samples=False):
    """(the mode that trains, why) for the requested mode and the training pixels per class. mixup-if-few
    becomes mixup when the median class (classes without training pixels left out) has at most FEW_LABELS
    training pixels, else none: in the benchmark mixup gained on every scene with 15 labels a class and lost
    on the field scene with 50 or more (bench/RESULTS.md, round 12). ssgan (the default) becomes none when
    training from a sample file (from_samples), which holds no unlabelled pixels. Other modes train as
    requested (why: '')."""
    if mode == "ssgan" and from_samples:
        return "none", "a sample file holds no unlabelled raster pixels for ssgan to learn from"
    if mode != "mixup-if-few":
        return mode, ""
    median = median_class(counts)
    if median is None:
        return "none", "no class has training pixels"
    if median <= FEW_LABELS:
        return "mixup", f"the median class has {median:g} training pixels, at most {FEW_LABELS}"
    return "none", f"the median class has {median:g} training pixels, more than {FEW_LABELS}"


def tries_none_first(cfg, counts, n_validation):
    """Whether GAN ssgan trains GAN none first and keeps it where its automatic kernel head weight is at least
    NONE_IF_HEAD (train.ssgan_or_none): with the head on at an automatic weight, validation pixels, and a median
    class of at least MANY_LABELS training pixels (many_labels). Round 26 (bench/RESULTS.md): on the urban Berlin
    scene with 50 px/class and every pixel the default had stayed 0.6-1.3 OA below GAN none; where GAN none's head
    weight reached 0.9 the head carried the model and ssgan's network did not help. On the engine's own map (rounds
    29-30, bench/gan_rule.py) 0.9 still left the default 1.1 OA below GAN none on Berlin with every pixel over 20
    seeds.
    0.5 passed a held-out check (worst cell -0.41, +0.14 OA on the mean of six cells) but, scored correctly, the
    decision seeds did not single it out: over 30 seeds it is level with 0.9 and trains ssgan less.
    Round 31: draws whose median class has exactly 20 pixels had been left to ssgan, which lost 0.7-17 OA to GAN none
    in them on Berlin; the rule now applies there too.
    With few labels ssgan's gain is largest (+4 OA on Indian Pines at 15 px/class), so the rule leaves them alone."""
    return (cfg.gan == "ssgan" and cfg.spectral_head and not cfg.spectral_head_weight
            and many_labels(median_class(counts), n_validation))


def many_labels(median, n_validation, least=MANY_LABELS):
    """Whether a draw (its median class, its validation pixels) is one where GAN ssgan tries GAN none first (least:
    the bound, for benchmarks scoring another). At 15 px/class the rule would cost Indian Pines about 5 OA
    (bench/RESULTS.md, round 31); no benchmark draw has a median between 15 and 20."""
    return n_validation > 0 and median is not None and median >= least


def resolve_gan_steps(mode, requested, epochs, n_train, batch_size):
    """GAN steps to run; requested 0 = automatic. ssgan runs a fixed 550 steps whatever the number of
    labels (its cost used to grow with them: 2,900 steps for 1,800 labelled pixels), so that training at 15
    labels a class stays within a minute on 2 CPU cores; under the spectral kernel head 550 steps were as
    accurate as 800 (bench/RESULTS.md, round 14; without the head 400 had lost 8 OA on Berlin against 800).
    epochs, n_train and batch_size are kept for callers."""
    if mode in ("none", "spectral", "mixup"):  # no GAN is trained
        return 0
    if requested:
        return int(requested)
    return SSGAN_STEPS if mode == "ssgan" else WGAN_STEPS


def resolve_synthetic_ratio(mode, requested):
    """Synthetic samples per real one: 0 for the modes that make none (none, ssgan, auto); else requested, or
    when it is 0 (automatic) MIXUP_RATIO for mixup and 1 for wgan and spectral."""
    if mode not in ("wgan", "spectral", "mixup"):
        return 0.0
    if requested:
        return float(requested)
    return MIXUP_RATIO if mode == "mixup" else 1.0


def _real_batch(block, pixels, labels_t, radius, batch_size, generator, by_class=None):
    """A random batch of labelled patches (flipped/rotated alike); with by_class (pixel indices of each
    class), class-balanced: a class drawn uniformly, then one of its pixels."""
    import torch

    if by_class is None:
        idx = torch.randint(0, len(pixels), (batch_size,), generator=generator).numpy()
    else:
        classes = torch.randint(0, len(by_class), (batch_size,), generator=generator).numpy()
        within = torch.rand(batch_size, generator=generator, dtype=torch.float64).numpy()
        idx = np.array([by_class[c][int(u * len(by_class[c]))] for c, u in zip(classes, within)])
    x = gather_patches(block, pixels.rows[idx], pixels.cols[idx], radius)
    return random_dihedral(x, generator), labels_t[idx]


def train_wgan(block, train, radius, n_classes, steps, seed, feedback, batch_size=64):
    """Fit a conditional WGAN-GP on the training patches; returns (generator, history)."""
    import torch
    from .torch_modules import torch_module
    ConditionalCritic = torch_module("critic").ConditionalCritic
    ConditionalGenerator = torch_module("generator").ConditionalGenerator
    losses = torch_module("losses")
    critic_loss, generator_loss, gradient_penalty = losses.critic_loss, losses.generator_loss, losses.gradient_penalty

    device = block.device
    bands, patch = block.shape[0], 2 * radius + 1
    rng = torch.Generator().manual_seed(seed + 1)
    torch.manual_seed(seed + 1)
    gen = ConditionalGenerator(bands, n_classes, patch).to(device)
    critic = ConditionalCritic(bands, n_classes, patch).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9))
    labels_t = torch.as_tensor(train.labels, device=device)
    history, started = [], time.perf_counter()
    for step in range(steps):
        feedback.check_cancel()
        for _ in range(N_CRITIC):
            real, y = _real_batch(block, train, labels_t, radius, batch_size, rng)
            with torch.no_grad():
                fake = gen(torch.randn(len(y), gen.noise_dim, generator=rng).to(device), y)
            d_loss = critic_loss(critic(real, y), critic(fake, y)) + gradient_penalty(critic, real, fake, y, GP_WEIGHT)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        y = torch.randint(0, n_classes, (batch_size,), generator=rng).to(device)
        g_loss = generator_loss(critic(gen(torch.randn(batch_size, gen.noise_dim, generator=rng).to(device), y), y))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if not (math.isfinite(d_loss.item()) and math.isfinite(g_loss.item())):
            raise Diverged(f"the GAN's losses became non-finite at step {step + 1}")
        if step % 10 == 0 or step == steps - 1:
            history.append(dict(step=step + 1, critic=d_loss.item(), generator=g_loss.item()))
        feedback.progress(100.0 * (step + 1) / steps)
        if (step + 1) % max(1, steps // 5) == 0:
            feedback.info(f"GAN step {step + 1}/{steps}: critic {d_loss.item():.3f}, generator {g_loss.item():.3f}"
                          + eta_text(started, step + 1, steps))
    gen.eval()
    return gen, history


def draw_synthetic(gen, counts, seed, batch=256):
    """Synthetic (patches, labels) with counts[k] samples of class k."""
    import torch

    rng = torch.Generator().manual_seed(seed + 2)
    device = next(gen.parameters()).device
    labels = torch.cat([torch.full((int(c),), k, dtype=torch.long) for k, c in enumerate(counts)]).to(device)
    out = []
    with torch.no_grad():
        for start in range(0, len(labels), batch):
            y = labels[start:start + batch]
            out.append(gen(torch.randn(len(y), gen.noise_dim, generator=rng).to(device), y))
    patches = torch.cat(out) if out else torch.zeros(0)
    return patches, labels


def train_ssgan(classifier, block, valid_block, train, radius, n_classes, steps, learning_rate, seed,
                feedback, batch_size=64, balanced=False, unlabelled_batch=0):
    """Semi-supervised GAN: trains `classifier` in place as the discriminator; returns history.
    balanced: labelled batches draw every class equally often (class_balanced in TrainConfig).
    unlabelled_batch: unlabelled and generated patches per step (0 = batch_size); they are most of a step's
    cost, the labelled batch keeps batch_size."""
    import torch
    import torch.nn.functional as F
    from .torch_modules import torch_module
    ConditionalGenerator = torch_module("generator").ConditionalGenerator
    losses = torch_module("losses")
    feature_matching_loss, ssgan_discriminator_loss = losses.feature_matching_loss, losses.ssgan_discriminator_loss

    device = block.device
    bands, patch = block.shape[0], 2 * radius + 1
    rng = torch.Generator().manual_seed(seed + 3)
    torch.manual_seed(seed + 3)
    gen = ConditionalGenerator(bands, n_classes, patch).to(device)
    opt_d = torch.optim.Adam(classifier.parameters(), lr=learning_rate, betas=(0.5, 0.999), weight_decay=1e-4)
    opt_g = torch.optim.Adam(gen.parameters(), lr=learning_rate, betas=(0.5, 0.999))
    labels_t = torch.as_tensor(train.labels, device=device)
    by_class = [np.flatnonzero(train.labels == c) for c in np.unique(train.labels)] if balanced else None
    valid_rows, valid_cols = np.nonzero(valid_block)
    if len(valid_rows) == 0:
        valid_rows, valid_cols = train.rows, train.cols

    def unlabelled(n):
        idx = torch.randint(0, len(valid_rows), (n,), generator=rng).numpy()
        return random_dihedral(gather_patches(block, valid_rows[idx], valid_cols[idx], radius), rng)

    def pooled(x):
        return classifier.features(x).mean(dim=(2, 3))

    n_u = int(unlabelled_batch) or batch_size
    history, started = [], time.perf_counter()
    for step in range(steps):
        feedback.check_cancel()
        for group in opt_d.param_groups:
            group["lr"] = learning_rate * 0.5 * (1 + math.cos(math.pi * step / steps))
        classifier.train()
        x_l, y_l = _real_batch(block, train, labels_t, radius, batch_size, rng, by_class)
        x_u = unlabelled(n_u)
        y_f = torch.randint(0, n_classes, (n_u,), generator=rng).to(device)
        x_f = gen(torch.randn(n_u, gen.noise_dim, generator=rng).to(device), y_f)
        # Real patches (labelled + unlabelled) share one pass, fakes take their own: in a mixed batch the
        # fakes' statistics leak into BatchNorm and the real patches are normalised with them (on Indian
        # Pines, 15 px/class, mixing cost several OA points; see bench/RESULTS-indian-pines.md).
        logits = classifier(torch.cat([x_l, x_u])).flatten(1)
        fake_logits = classifier(x_f.detach()).flatten(1)
        sup, unsup = ssgan_discriminator_loss(logits[:batch_size], y_l, logits[batch_size:], fake_logits)
        d_loss = sup + UNLABELLED_WEIGHT * unsup
        if ENTROPY_WEIGHT:  # Dai et al. 2017: confident predictions on real unlabelled patches
            p_u = F.log_softmax(logits[batch_size:], dim=1)
            d_loss = d_loss + ENTROPY_WEIGHT * -(p_u.exp() * p_u).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # The generator's update needs the discriminator's input gradients, not its weights' (opt_d zeroes
        # them before its next step): freezing them skips that work; the model is the same (bit for bit on
        # the CPU at 60 and 550 steps, round 15).
        classifier.requires_grad_(False)
        with torch.no_grad():
            target = pooled(x_u)
        g_loss = feature_matching_loss(target, pooled(x_f))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        classifier.requires_grad_(True)
        if not (math.isfinite(d_loss.item()) and math.isfinite(g_loss.item())):
            raise Diverged(f"the semi-supervised GAN's losses became non-finite at step {step + 1}")
        if step % 10 == 0 or step == steps - 1:
            history.append(dict(step=step + 1, supervised=sup.item(), unsupervised=unsup.item(),
                                generator=g_loss.item()))
        feedback.progress(100.0 * (step + 1) / steps)
        if (step + 1) % max(1, steps // 5) == 0:
            feedback.info(f"SSGAN step {step + 1}/{steps}: supervised {sup.item():.3f}, "
                          f"unsupervised {unsup.item():.3f}, generator {g_loss.item():.3f}"
                          + eta_text(started, step + 1, steps))
    recalibrate_batchnorm(classifier, lambda: unlabelled(256), rounds=8)
    classifier.eval()
    return history


def recalibrate_batchnorm(model, draw_real, rounds):
    """Re-estimate BatchNorm running statistics on real patches only (fakes passed through it in
    training would otherwise skew the statistics used at inference)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(rounds):
            model(draw_real())
    for m in norms:
        m.momentum = 0.1
    model.eval()
