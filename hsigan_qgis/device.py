"""Choosing the torch device, with the reason said out loud."""
from .errors import InputError


def cuda_status():
    """(available, reason) for CUDA in this torch build."""
    import torch

    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} is a CPU build"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} has CUDA {torch.version.cuda} but no usable GPU or driver was found"
    return True, f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"


def choose(requested: str = "auto", feedback=None):
    """torch.device for 'auto', 'cpu' or 'cuda'; logs which and why."""
    import torch

    requested = (requested or "auto").lower()
    if requested not in ("auto", "cpu", "cuda"):
        raise InputError("DEVICE", f"'{requested}' is not a device; use auto, cpu or cuda")
    available, reason = cuda_status()
    if requested == "cuda" and not available:
        raise InputError("DEVICE", f"CUDA was asked for but is not available: {reason}; use DEVICE=cpu or auto, "
                                   "or install a CUDA build of torch")
    if requested == "cpu":
        device, why = torch.device("cpu"), "asked for"
    elif available:
        device, why = torch.device("cuda"), reason
    else:
        device, why = torch.device("cpu"), f"CUDA not available: {reason}"
    if feedback is not None:
        feedback.info(f"Device: {device.type} ({why})")
    return device
