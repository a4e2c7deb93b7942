#!/usr/bin/env python3
"""Train vitclassify's default model: a small timm Vision Transformer on Fashion-MNIST.

Recipe (defaults of this script = the shipped model):
  1. a small CNN teacher is trained for a few epochs;
  2. a timm ``VisionTransformer`` (28x28 input, 4x4 patches, 3 input channels holding the
     replicated gray image) is trained with DeiT-style knowledge distillation from that
     teacher, AdamW + linear warmup + cosine decay, label smoothing, random translation,
     horizontal flip, random erasing and an EMA of the weights;
  3. the EMA weights are saved in timm's on-disk format (``model.safetensors`` holding
     ``model.state_dict()`` + a Hugging Face Hub style ``config.json``);
  4. the saved file is reloaded into a fresh timm model (eval mode, float32) and evaluated on
     all 10,000 test images with exactly the preprocessing described in config.json
     (uint8 gray -> RGB replicate -> /255 -> (x - mean) / std). Its test predictions and the
     logits of the first 64 test images are written for the Swift engine's tests.

Everything is deterministic (fixed seeds, fixed thread count, CPU only).

Usage (from the repository root, with the tools virtualenv):
  .venv-tools/bin/python tools/train_default_model.py
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

# With the default (spinning) OpenMP wait policy, 2 torch threads on a 2-core machine that is
# shared with other jobs slow down ~5x; passive waiting keeps 2 threads efficient.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import timm
from timm.models.vision_transformer import VisionTransformer
from timm.models.deit import VisionTransformerDistilled
from timm.utils import ModelEmaV3
from safetensors.torch import save_file, load_file

LABEL_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
ARCH_NAME = "vit_fashion_mnist_patch4_28"
IMG_SIZE = 28
PATCH_SIZE = 4
# Normalisation: Fashion-MNIST training-set mean/std of pixel/255 (replicated over RGB).
MEAN = 0.2860
STD = 0.3530

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load_split(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    assert images.shape[1:] == (28, 28) and len(images) == len(labels)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def preprocess(images_u8):
    """Exact evaluation preprocessing: uint8 gray (N,28,28) -> RGB (N,3,28,28), /255, normalise."""
    x = images_u8.to(torch.float32).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor([MEAN] * 3, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor([STD] * 3, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x / 255.0) - mean) / std


def augment(images_u8, gen, pad, flip, erase_prob):
    """Batched training augmentation on uint8 gray images (B,28,28).

    Returns the normalised single-channel float tensor (B,1,28,28): random translation by up
    to +-pad pixels (zero = black padding, i.e. random crop of the zero-padded image),
    horizontal flip with p=0.5, random erasing (timm-style 'pixel' mode: normal noise in
    normalised space) with probability erase_prob.
    """
    B = images_u8.shape[0]
    x = images_u8.to(torch.float32) / 255.0
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
        base = torch.arange(IMG_SIZE)
        rows = (dy[:, None] + base[None, :])[:, :, None]
        cols = (dx[:, None] + base[None, :])[:, None, :]
        x = xp[torch.arange(B)[:, None, None], rows, cols]
    if flip:
        m = torch.rand(B, generator=gen) < 0.5
        x = torch.where(m[:, None, None], x.flip(-1), x)
    x = (x - MEAN) / STD
    if erase_prob > 0:
        # area fraction in [0.02, 1/3], log-uniform aspect ratio in [0.3, 3.3]
        do = torch.rand(B, generator=gen) < erase_prob
        area = (0.02 + torch.rand(B, generator=gen) * (1 / 3 - 0.02)) * IMG_SIZE * IMG_SIZE
        logr = math.log(0.3) + torch.rand(B, generator=gen) * (math.log(1 / 0.3) - math.log(0.3))
        ar = torch.exp(logr)
        h = torch.sqrt(area * ar).round().clamp(1, IMG_SIZE).long()
        w = torch.sqrt(area / ar).round().clamp(1, IMG_SIZE).long()
        top = (torch.rand(B, generator=gen) * (IMG_SIZE - h + 1).float()).long()
        left = (torch.rand(B, generator=gen) * (IMG_SIZE - w + 1).float()).long()
        ar_ = torch.arange(IMG_SIZE)
        rmask = (ar_[None, :] >= top[:, None]) & (ar_[None, :] < (top + h)[:, None])
        cmask = (ar_[None, :] >= left[:, None]) & (ar_[None, :] < (left + w)[:, None])
        mask = rmask[:, :, None] & cmask[:, None, :] & do[:, None, None]
        noise = torch.randn(x.shape, generator=gen)
        x = torch.where(mask, noise, x)
    return x.unsqueeze(1)


def to_rgb(x1):
    return x1.expand(-1, 3, -1, -1)


# ----------------------------------------------------------------------------- models

class TeacherCNN(nn.Module):
    """Small VGG-style CNN teacher (gray input). Used only during training, not shipped."""

    def __init__(self, width=32, num_classes=10):
        super().__init__()
        c1, c2, c3 = width, width * 2, width * 4

        def cbr(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *cbr(1, c1), *cbr(c1, c1), nn.MaxPool2d(2),       # 14x14
            *cbr(c1, c2), *cbr(c2, c2), nn.MaxPool2d(2),      # 7x7
            *cbr(c2, c3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(c3, num_classes)

    def forward(self, x):
        return self.fc(self.drop(self.features(x)))


def model_args_from(args):
    ma = dict(
        img_size=IMG_SIZE, patch_size=PATCH_SIZE, in_chans=3,
        embed_dim=args.embed_dim, depth=args.depth, num_heads=args.num_heads,
        mlp_ratio=args.mlp_ratio, qkv_bias=True, class_token=True, global_pool="token",
    )
    if args.init_values is not None:
        ma["init_values"] = args.init_values
    return ma


def build_vit(model_args, distilled, num_classes=10, drop_path_rate=0.0):
    cls = VisionTransformerDistilled if distilled else VisionTransformer
    return cls(num_classes=num_classes, drop_path_rate=drop_path_rate, **model_args)


def is_distilled_state(state_dict):
    """A timm VisionTransformerDistilled checkpoint has a distillation token and a second head."""
    return "dist_token" in state_dict


def vit_flops(model_args, distilled, num_classes=10):
    """Forward MACs*2 of the matmuls (2*M*N*K each), per image."""
    D = model_args["embed_dim"]
    L = model_args["depth"]
    M = int(D * model_args["mlp_ratio"])
    P = PATCH_SIZE
    n_patch = (IMG_SIZE // P) ** 2
    T = n_patch + 1 + (1 if distilled else 0)
    patch = 2 * n_patch * (model_args["in_chans"] * P * P) * D
    block = 2 * T * (4 * D * D + 2 * D * M) + 4 * T * T * D
    head = 2 * D * num_classes * (2 if distilled else 1)
    return patch + L * block + head


# ----------------------------------------------------------------------------- training

def cosine_lr(step, total, warmup, base_lr, min_lr):
    if step < warmup:
        return base_lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))


@torch.no_grad()
def evaluate(model, x_eval, labels, batch=1000, rgb=True):
    model.eval()
    preds, logits_all = [], []
    for i in range(0, len(x_eval), batch):
        xb = x_eval[i:i + batch]
        out = model(to_rgb(xb) if rgb and xb.shape[1] == 1 else xb)
        logits_all.append(out)
        preds.append(out.argmax(1))
    preds = torch.cat(preds)
    return (preds == labels).float().mean().item(), preds, torch.cat(logits_all)


def param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name in ("cls_token", "dist_token", "pos_embed") or name.endswith(".gamma"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def train_teacher(args, x_train, y_train, x_test1, y_test, log):
    torch.manual_seed(args.seed + 1)
    gen = torch.Generator().manual_seed(args.seed + 101)
    teacher = TeacherCNN(width=args.teacher_width)
    teacher = teacher.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(param_groups(teacher, 5e-4), lr=args.teacher_lr, betas=(0.9, 0.999))
    n = len(x_train)
    bs = args.teacher_batch_size
    steps_per_epoch = n // bs
    total = steps_per_epoch * args.teacher_epochs
    warm = steps_per_epoch // 2
    step = 0
    t0 = time.time()
    for ep in range(args.teacher_epochs):
        teacher.train()
        perm = torch.randperm(n, generator=gen)
        tl = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            xb = augment(x_train[idx], gen, args.pad, True, 0.0).contiguous(memory_format=torch.channels_last)
            lr = cosine_lr(step, total, warm, args.teacher_lr, args.teacher_lr * 0.01)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(teacher(xb), y_train[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tl += loss.item()
            step += 1
        acc, _, _ = evaluate(teacher, x_test1, y_test, rgb=False)
        log(f"teacher epoch {ep + 1}/{args.teacher_epochs} loss {tl / steps_per_epoch:.4f} "
            f"test acc {acc * 100:.2f}% ({time.time() - t0:.0f}s)")
    teacher.eval()
    return teacher, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "weights", "fashion-mnist-vit"))
    ap.add_argument("--resources-dir",
                    default=os.path.join(REPO_ROOT, "Tests", "ViTKitTests", "Resources", "fashion-mnist"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=0, help="use only the first N training images (pilots)")
    # architecture
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--num-heads", type=int, default=4)
    ap.add_argument("--mlp-ratio", type=float, default=2.0)
    ap.add_argument("--init-values", type=float, default=None, help="LayerScale init (None = off)")
    ap.add_argument("--drop-path", type=float, default=0.0)
    # optimisation
    ap.add_argument("--epochs", type=int, default=45)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup-epochs", type=float, default=2.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--clip-grad", type=float, default=1.0)
    ap.add_argument("--ema-decay", type=float, default=0.999, help="0 disables EMA")
    # augmentation
    ap.add_argument("--pad", type=int, default=2, help="random translation range in pixels")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--erase-prob", type=float, default=0.25)
    # distillation
    ap.add_argument("--distill", choices=["none", "soft", "hard"], default="hard")
    ap.add_argument("--dist-token", action="store_true",
                    help="use timm VisionTransformerDistilled (distillation token + head_dist)")
    ap.add_argument("--distill-alpha", type=float, default=0.5)
    ap.add_argument("--distill-tau", type=float, default=1.0)
    ap.add_argument("--teacher-epochs", type=int, default=10)
    ap.add_argument("--teacher-width", type=int, default=32)
    ap.add_argument("--teacher-lr", type=float, default=3e-3)
    ap.add_argument("--teacher-batch-size", type=int, default=128)
    ap.add_argument("--teacher-cache", default="", help="load/save the teacher here (pilots only)")
    ap.add_argument("--no-export", action="store_true", help="do not write the test resources")
    ap.add_argument("--eval-raw", action="store_true", help="also evaluate the non-EMA weights every epoch")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()
    cpu_start = time.process_time()

    def log(msg):
        print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)

    log(f"torch {torch.__version__} timm {timm.__version__} threads {torch.get_num_threads()} args {vars(args)}")
    x_train_u8, y_train = load_split(args.data_dir, "train")
    x_test_u8, y_test = load_split(args.data_dir, "test")
    if args.train_subset:
        x_train_u8, y_train = x_train_u8[:args.train_subset], y_train[:args.train_subset]
    log(f"train {tuple(x_train_u8.shape)} test {tuple(x_test_u8.shape)}; "
        f"train pixel mean {x_train_u8.float().div(255).mean():.4f} std {x_train_u8.float().div(255).std():.4f} "
        f"(using mean {MEAN} std {STD})")
    x_test = preprocess(x_test_u8)            # (N,3,28,28), exact evaluation preprocessing
    x_test1 = x_test[:, :1].contiguous()     # gray copy for the teacher

    # ---------------------------------------------------------------- teacher
    teacher = None
    if args.distill != "none":
        if args.teacher_cache and os.path.exists(args.teacher_cache):
            teacher = TeacherCNN(width=args.teacher_width)
            teacher.load_state_dict(torch.load(args.teacher_cache))
            teacher.eval()
            acc, _, _ = evaluate(teacher, x_test1, y_test, rgb=False)
            log(f"loaded cached teacher {args.teacher_cache}: test acc {acc * 100:.2f}%")
        else:
            teacher, acc = train_teacher(args, x_train_u8, y_train, x_test1, y_test, log)
            if args.teacher_cache:
                torch.save(teacher.state_dict(), args.teacher_cache)
        for p in teacher.parameters():
            p.requires_grad_(False)
        teacher = teacher.to(memory_format=torch.channels_last)
    teacher_done = time.time()

    # ---------------------------------------------------------------- student
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 202)
    distilled = args.dist_token
    if distilled and args.distill == "none":
        sys.exit("--dist-token needs --distill soft|hard")
    model_args = model_args_from(args)
    model = build_vit(model_args, distilled, drop_path_rate=args.drop_path)
    if distilled:
        model.set_distilled_training(True)
    n_params = sum(p.numel() for p in model.parameters())
    flops = vit_flops(model_args, distilled)
    log(f"student {'VisionTransformerDistilled' if distilled else 'VisionTransformer'} {model_args}: "
        f"{n_params:,} params, {flops / 1e6:.2f} MFLOP/image (2*M*N*K matmuls)")

    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.999))
    ema = ModelEmaV3(model, decay=args.ema_decay) if args.ema_decay > 0 else None
    n = len(x_train_u8)
    bs = args.batch_size
    steps_per_epoch = n // bs
    total = steps_per_epoch * args.epochs
    warm = int(args.warmup_epochs * steps_per_epoch)
    step = 0
    history = []
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tl = 0.0
        te = time.time()
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            yb = y_train[idx]
            x1 = augment(x_train_u8[idx], gen, args.pad, not args.no_flip, args.erase_prob)
            lr = cosine_lr(step, total, warm, args.lr, args.min_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            out = model(to_rgb(x1))
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x1.contiguous(memory_format=torch.channels_last))
                out_cls, out_dist = out if distilled else (out, out)
                base = F.cross_entropy(out_cls, yb, label_smoothing=args.label_smoothing)
                if args.distill == "hard":
                    dl = F.cross_entropy(out_dist, t_logits.argmax(1))
                else:
                    tau = args.distill_tau
                    dl = F.kl_div(F.log_softmax(out_dist / tau, 1), F.log_softmax(t_logits / tau, 1),
                                  reduction="batchmean", log_target=True) * tau * tau
                loss = (1 - args.distill_alpha) * base + args.distill_alpha * dl
            else:
                loss = F.cross_entropy(out, yb, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip_grad > 0:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
            opt.step()
            step += 1
            if ema is not None:
                ema.update(model, step=step)
            tl += loss.item()
        msg = f"epoch {ep + 1}/{args.epochs} lr {lr:.2e} loss {tl / steps_per_epoch:.4f}"
        acc = ema_acc = None
        if ema is None or args.eval_raw:
            acc, _, _ = evaluate(model, x_test, y_test)
            model.train()
            msg += f" test acc {acc * 100:.2f}%"
        if ema is not None:
            ema_acc, _, _ = evaluate(ema.module, x_test, y_test)
            msg += f" test acc (EMA weights) {ema_acc * 100:.2f}%"
        history.append((ep + 1, acc, ema_acc))
        log(msg + f" ({time.time() - te:.0f}s/epoch)")

    final_model = ema.module if ema is not None else model
    train_time = time.time() - t_start
    train_cpu = time.process_time() - cpu_start
    log(f"training done: total {train_time:.0f}s (teacher {teacher_done - t_start:.0f}s, "
        f"student {time.time() - teacher_done:.0f}s); process CPU time {train_cpu:.0f}s")

    # ---------------------------------------------------------------- save (timm format)
    os.makedirs(args.out_dir, exist_ok=True)
    sd = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in final_model.state_dict().items()}
    st_path = os.path.join(args.out_dir, "model.safetensors")
    save_file(sd, st_path, metadata={"format": "pt"})
    config = {
        "architecture": ARCH_NAME,
        "num_classes": 10,
        "num_features": args.embed_dim,
        "global_pool": "token",
        "model_args": model_args,
        "pretrained_cfg": {
            "input_size": [3, IMG_SIZE, IMG_SIZE],
            "interpolation": "bicubic",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": [MEAN] * 3,
            "std": [STD] * 3,
            "num_classes": 10,
        },
        "label_names": LABEL_NAMES,
    }
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    log(f"wrote {st_path} ({os.path.getsize(st_path):,} bytes) and config.json")

    # ---------------------------------------------------------------- reload + evaluate
    with open(os.path.join(args.out_dir, "config.json")) as f:
        cfg = json.load(f)
    state = load_file(st_path)
    fresh = build_vit(cfg["model_args"], is_distilled_state(state), num_classes=cfg["num_classes"])
    fresh.load_state_dict(state, strict=True)
    fresh = fresh.float().eval()
    assert cfg["pretrained_cfg"]["mean"] == [MEAN] * 3 and cfg["pretrained_cfg"]["std"] == [STD] * 3
    acc, preds, logits = evaluate(fresh, preprocess(x_test_u8), y_test)
    n_correct = int((preds == y_test).sum())
    log(f"reloaded {st_path}: test accuracy {acc * 100:.2f}% ({n_correct}/{len(y_test)})")
    per_class = [float((preds[y_test == c] == c).float().mean()) for c in range(10)]
    log("per-class accuracy: " + ", ".join(f"{LABEL_NAMES[c]} {per_class[c] * 100:.1f}%" for c in range(10)))

    if not args.no_export:
        os.makedirs(args.resources_dir, exist_ok=True)
        with open(os.path.join(args.resources_dir, "torch_predictions.txt"), "w") as f:
            f.write("".join(f"{int(p)}\n" for p in preds))
        with open(os.path.join(args.resources_dir, "torch_logits_first64.json"), "w") as f:
            rows = [[repr(float(v)) for v in row] for row in logits[:64].tolist()]
            f.write('{"logits": [\n' + ",\n".join("[" + ", ".join(r) + "]" for r in rows) + "\n]}\n")
        log(f"wrote torch_predictions.txt and torch_logits_first64.json to {args.resources_dir}")

    log(f"SUMMARY params {n_params:,} | {flops / 1e6:.2f} MFLOP/image | final test acc {acc * 100:.2f}% | "
        f"training wall time {train_time:.0f}s ({train_time / 60:.1f} min), CPU time {train_cpu:.0f}s | "
        f"best epoch acc (raw/ema) {max([h[1] or 0 for h in history] + [0]) * 100:.2f}%/"
        f"{max([h[2] or 0 for h in history] + [0]) * 100:.2f}%")


if __name__ == "__main__":
    main()
