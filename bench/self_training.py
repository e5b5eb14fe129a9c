"""Self-training check (issue 12, round 4; a decision experiment, not an engine mode): does adding
pseudo-labelled scene pixels help the network + spectral kernel head at 15 px/class?

Per scene and seed (bench/accuracy.draw, the benchmark draw of bench/scenes.py): the network (GAN none,
class-balanced, MAX_STEPS 1000 as the engine) and the kernel head are trained on the drawn pixels and fused
with weight 0.3; then, per class, the RATIO x (its labelled count) unlabelled scene pixels with the highest
fused probability of that class become pseudo-labelled training pixels (the transductive setting of a
QGIS user: test spectra are at hand, never test labels), the network is trained again from the same seed on
labelled + pseudo-labelled pixels, and scored fused with the first head ('fused+self') or with a head
refitted on both ('fused+self+head'). pseudo_label_acc: share of pseudo-labels that are right where the
scene has reference labels. One torch thread.

    python bench/self_training.py SEEDS SCENES OUT.json --data DIR      (DIR: bench/scenes.py export)
    e.g. python bench/self_training.py 0,1,2,3,4 berlin_enmap,indian_pines bench/self-training-decide.json --data D
"""
import json, os, sys, time
import numpy as np
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT); sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch
torch.set_num_threads(1)
import scenes as S
from accuracy import draw, summary_of
from hsigan_qgis.sampling import PixelSet
from hsigan_qgis.predict import dense_logits, prepare_model
from hsigan_qgis.feedback import Feedback
from hsigan_qgis.training import fit_classifier, seed_everything
from models.classifier import SpectralSpatialNet

D = sys.argv[sys.argv.index("--data") + 1]
RATIO = float(os.environ.get("RATIO", "3"))
W = 0.3

def fit_net(block, pixels, n, seed, radius):
    seed_everything(seed)
    m = SpectralSpatialNet(block.shape[0], n, 2 * radius + 1)
    empty = PixelSet(pixels.rows[:0], pixels.cols[:0], pixels.labels[:0])
    batches = int(np.ceil(len(pixels) / S.BATCH))
    epochs = max(1, min(S.EPOCHS, 1000 // batches))
    fit_classifier(m, block, pixels, empty, radius, epochs, S.BATCH, S.LR, seed, Feedback(), balanced=True)
    m = prepare_model(m, torch.device("cpu"))
    with torch.no_grad():
        return torch.softmax(dense_logits(m, block[None]), 1)[0]

out = []
for scene in sys.argv[2].split(","):
    cube = np.load(f"{D}/{scene}_cube.npy"); gt, trm, tem = (np.load(f"{D}/{scene}_{k}.npy") for k in ("gt", "train", "test"))
    ids = np.unique(gt[trm]); n = len(ids); tr, tc = np.nonzero(tem)
    radius = S.PATCH // 2
    block = S.scene_block(cube, radius, torch.device("cpu"))
    for seed in [int(s) for s in sys.argv[1].split(",")]:
        t0 = time.process_time()
        rows, cols = draw(trm, gt, 15, seed)
        px = PixelSet(rows, cols, np.searchsorted(ids, gt[rows, cols]).astype(np.int64))
        net = fit_net(block, px, n, seed, radius)
        head = S.fit_head(block, px, radius, n, seed)
        with torch.no_grad():
            kern = torch.softmax(head(block[None]), 1)[0]
        fused = (1 - W) * net + W * kern
        res = {}
        for name, p in (("net", net), ("fused", fused)):
            res[name] = summary_of(gt[tr, tc], ids[p.argmax(0).numpy()[tr, tc]])["oa"]
        # pseudo-labels: per class, the most confident unlabelled pixels (fused probabilities)
        conf, lab = fused.max(0)
        conf, lab = conf.numpy().copy(), lab.numpy()
        conf[rows, cols] = -1
        pr, pc, pl = [], [], []
        counts = np.bincount(px.labels, minlength=n)
        for c in range(n):
            cand = np.flatnonzero((lab.ravel() == c) & (conf.ravel() > 0))
            k = int(RATIO * counts[c])
            top = cand[np.argsort(-conf.ravel()[cand], kind="stable")[:k]]
            r, cc = np.unravel_index(top, gt.shape)
            pr.append(r); pc.append(cc); pl.append(np.full(len(top), c))
        pr, pc, pl = map(np.concatenate, (pr, pc, pl))
        pseudo_acc = float((ids[pl] == gt[pr, pc])[gt[pr, pc] > 0].mean()) if (gt[pr, pc] > 0).any() else float("nan")
        big = PixelSet(np.concatenate([rows, pr]), np.concatenate([cols, pc]), np.concatenate([px.labels, pl]).astype(np.int64))
        net2 = fit_net(block, big, n, seed, radius)
        fused2 = (1 - W) * net2 + W * kern
        head2 = S.fit_head(block, big, radius, n, seed)
        with torch.no_grad():
            kern2 = torch.softmax(head2(block[None]), 1)[0]
        fused3 = (1 - W) * net2 + W * kern2
        for name, p in (("net+self", net2), ("fused+self", fused2), ("fused+self+head", fused3)):
            res[name] = summary_of(gt[tr, tc], ids[p.argmax(0).numpy()[tr, tc]])["oa"]
        r = dict(scene=scene, seed=seed, ratio=RATIO, pseudo_label_acc=round(pseudo_acc, 3), cpu=round(time.process_time() - t0, 1), **{k: round(v, 2) for k, v in res.items()})
        print(json.dumps(r), flush=True)
        out.append(r)
json.dump(out, open(sys.argv[3], "w"), indent=1)
