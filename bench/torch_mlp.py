"""The PyTorch side of bench/compare: the same MLP, data and optimizer as `feedforward bench`.

ReLU hidden layers, a linear output with nn.CrossEntropyLoss (softmax plus categorical
cross-entropy), He-normal weights and zero biases, Adam at 1e-3, pixels scaled to [0, 1],
reshuffled every epoch. Prints one line per epoch, then a `RESULT {json}` line.

Usage: python3 torch_mlp.py --config a|b [--threads 2] [--epochs N] [--seed S] [--data DIR]
"""
import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

CONFIGS = {"a": ((256, 128), 128, 10), "b": ((1024, 1024), 512, 2)}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{stem}[.gz] not found in {directory}")


def load(directory):
    def images(stem):
        x = read_idx(find(directory, stem))
        return torch.from_numpy(x.reshape(x.shape[0], -1).astype(np.float32) / 255.0)

    def labels(stem):
        return torch.from_numpy(read_idx(find(directory, stem)).astype(np.int64))

    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", choices=CONFIGS, default="a")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    hidden, batch, epochs = CONFIGS[args.config]
    epochs = args.epochs or epochs

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = np.random.default_rng(args.seed)
    x_train, y_train, x_test, y_test = load(args.data)

    widths = [x_train.shape[1], *hidden, 10]
    layers = []
    for index, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        linear = nn.Linear(n_in, n_out)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if index < len(widths) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} "
          f"layers={'-'.join(map(str, widths))} batch={batch} epochs={epochs}")

    epoch_secs, accuracies = [], []
    for epoch in range(1, epochs + 1):
        order = torch.from_numpy(generator.permutation(x_train.shape[0]))
        model.train()
        start = time.perf_counter()
        total = torch.zeros(())
        for first in range(0, x_train.shape[0], batch):
            chosen = order[first:first + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(model(x_train[chosen]), y_train[chosen])
            loss.backward()
            optimizer.step()
            total += loss.detach() * chosen.shape[0]
        seconds = time.perf_counter() - start
        model.eval()
        with torch.inference_mode():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        epoch_secs.append(seconds)
        accuracies.append(accuracy)
        print(f"epoch {epoch:2d}  train_s {seconds:8.3f}  loss {total.item() / x_train.shape[0]:.4f}  "
              f"test_acc {accuracy:.4f}")

    with torch.inference_mode():
        full = []
        for round_ in range(13):
            start = time.perf_counter()
            model(x_test).argmax(1)
            if round_ >= 3:
                full.append(time.perf_counter() - start)
        # One image at a time, taking the test images in turn as feedforward's bench does.
        singles = [x_test[i:i + 1].clone() for i in range(min(1000, x_test.shape[0]))]
        latency = []
        for round_ in range(1100):
            single = singles[round_ % len(singles)]
            start = time.perf_counter()
            model(single).argmax(1)
            if round_ >= 100:
                latency.append(time.perf_counter() - start)
    batch_seconds = statistics.median(full)
    print("RESULT " + json.dumps({
        "framework": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
        "config": args.config, "epoch_secs": epoch_secs, "test_accs": accuracies,
        "median_epoch_s": statistics.median(epoch_secs), "final_test_acc": accuracies[-1],
        "infer_images_per_s": x_test.shape[0] / batch_seconds,
        "latency_b1_us": statistics.median(latency) * 1e6,
    }))


if __name__ == "__main__":
    main()
