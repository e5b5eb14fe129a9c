"""GAN losses: WGAN-GP critic/generator terms and the semi-supervised GAN terms."""
import torch
import torch.nn.functional as F


def gradient_penalty(critic, real, fake, labels, weight: float = 10.0):
    """Gulrajani et al. 2017: penalise (||grad D(x_hat)|| - 1)^2 on random interpolates."""
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(mixed, labels)
    grads, = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return weight * ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(real_scores, fake_scores):
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores):
    return -fake_scores.mean()


def ssgan_discriminator_loss(logits_labelled, labels, logits_unlabelled, logits_fake):
    """Salimans et al. 2016 with an implicit fake class: D(x) = Z/(Z+1), Z = sum exp(logits)."""
    supervised = F.cross_entropy(logits_labelled, labels)
    lse_unl = torch.logsumexp(logits_unlabelled, dim=1)
    lse_fake = torch.logsumexp(logits_fake, dim=1)
    unsupervised = (-lse_unl + F.softplus(lse_unl)).mean() + F.softplus(lse_fake).mean()
    return supervised, unsupervised


def feature_matching_loss(real_features, fake_features):
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).mean()
