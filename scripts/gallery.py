#!/usr/bin/env python3
"""Runs every example in full and writes examples/README.md: one table per
experiment with the command, what it shows and the measured result.

  python3 scripts/gallery.py [--nnc build/nnc] [--out examples/README.md]

Standard library only. Run from anywhere; paths are relative to the repo.
The tests (tests/test_examples.cpp) run every example at reduced size; this
script is how the full-size numbers in the README are made.
"""
import argparse
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (section title, introduction, [(example, what it shows)], notes after the table)
SECTIONS = [
    ("Perceptrons and forward passes",
     "Fixed weights, no training: `nnc eval` prints the outputs.",
     [("gates.nn", "AND, NAND, OR from one perceptron each; XOR from two layers of them"),
      ("three_layer.nn", "the notes' three-layer forward pass with given weights")],
     ""),
    ("Fashion-MNIST classifiers",
     "The notes' networks on Fashion-MNIST (Debian's `dataset-fashion-mnist`).",
     [("mnist_mlp.nn", "the notes' 784-40-20-10 MLP (relu, He), Adam, 5 epochs"),
      ("multilayer.nn", "six hidden layers of 100 written with a `def` and a `for` loop; Momentum, 2 epochs"),
      ("simple_convnet.nn", "the notes' SimpleConvNet: conv 5×5, max-pool, two dense layers"),
      ("optimizers/mnist_adam.nn", "a 784-50-10 MLP, Adam with a cosine schedule"),
      ("keras_mlp.nn", "a Keras-style MLP: `dense(..., activation = \"gelu\")`, silu and elu layers, layernorm; Adam, 3 epochs")],
     ""),
    ("Vanishing gradients: weight initialization",
     "The 784-40-20-10 network, SGD lr 0.1, 2000 steps of batch 100, four initializations.",
     [("init/sigmoid_normal.nn", "sigmoid + normal(0.01)"),
      ("init/relu_normal.nn", "relu + normal(0.01)"),
      ("init/sigmoid_xavier.nn", "sigmoid + xavier"),
      ("init/relu_he.nn", "relu + he")],
     "As in the notes: with sigmoid and weights of deviation 0.01 the gradient "
     "that reaches the first layers is too small and the network stays at "
     "chance (0.1); Xavier's scale rescues the sigmoid network, and relu learns "
     "with either scale, best with He's."),
    ("Optimizers",
     "The same network with sigmoid and normal(0.01) weights (the setting in "
     "which plain SGD stalls), lr 0.01, 1000 steps.",
     [("optimizers/compare_sgd.nn", "SGD"),
      ("optimizers/compare_momentum.nn", "Momentum (0.9)"),
      ("optimizers/compare_adagrad.nn", "AdaGrad"),
      ("optimizers/compare_rmsprop.nn", "RMSprop"),
      ("optimizers/compare_adam.nn", "Adam")],
     "The notes' conclusion holds: the adaptive methods (RMSprop, Adam) learn "
     "where SGD does not move, and AdaGrad starts but slows as its sums grow. "
     "**Unlike the notes, Momentum also stalls here**: the notes ran their "
     "comparison on a relu network with He weights, where every method "
     "learns and momentum's speed-up shows; under sigmoid + normal(0.01) the "
     "gradient is so small that 1000 steps of momentum do not leave the "
     "plateau either."),
    ("Overfitting and its cures",
     "300 training samples, six hidden layers of 100 relus, 1000 steps of "
     "batch 100. *train-set* is the 300 samples scored in inference mode "
     "(the notes' training accuracy); the gap is train-set minus test.",
     [("overfitting/plain.nn", "no cure: SGD lr 0.01"),
      ("overfitting/l2.nn", "L2 weight decay, λ = 0.1"),
      ("overfitting/l1.nn", "L1, λ = 0.005 (SGD lr 0.1, as the notes)"),
      ("overfitting/dropout.nn", "dropout 0.15 after every hidden layer"),
      ("overfitting/dropout_adam.nn", "dropout 0.15, trained by Adam (lr 0.001)"),
      ("overfitting/dropout_l1.nn", "what the notes' \"dropout + Adam\" cell runs: dropout 0.08 + L1 λ = 0.004, SGD lr 0.01")],
     "The plain network learns the 300 samples perfectly and generalizes "
     "worst relative to that; L2 and L1 close most of the gap (by keeping the "
     "training accuracy down, as in the notes' curves) and dropout narrows it. "
     "With Adam the dropout network fits the training set completely again: "
     "the gap comes back, while its test accuracy is about the plain "
     "network's. **This differs from the notes**, whose \"dropout + Adam\" "
     "cell in fact trains with SGD: its code sets dropout 0.08 and adds L1 "
     "(λ = 0.004) to the hidden layers' gradients. That combination "
     "(`dropout_l1.nn`) narrows the gap from 0.25 to 0.14 at about the "
     "plain network's test accuracy. The notes conclude that a "
     "stronger penalty suppresses overfitting more but lowers test accuracy "
     "too (L2 0.1 and L1 0.005 here), and that too high a dropout rate "
     "suppresses learning, too low one does not cure. nnc's `regularize` decays every weight matrix including the "
     "output layer's; the notes' loop skips the output layer."),
    ("Batch normalization",
     "The 784-40-20-10 sigmoid network with normal(0.01) weights and SGD lr "
     "0.01 for 1000 steps, without and with batchnorm before each sigmoid.",
     [("batchnorm/off.nn", "without batchnorm"),
      ("batchnorm/on.nn", "with batchnorm")],
     "Normalizing the pre-activations puts them where the sigmoid has slope, "
     "so the same badly scaled start learns."),
    ("Losses",
     "Regression, binary and multi-class classification (datasets made by "
     "`examples/data/make_data.py`, committed).",
     [("losses/regression_mse.nn", "regression with MSE (noise floor: loss 0.0025)"),
      ("losses/binary_bce.nn", "T-shirt vs shirt, one output, binary cross-entropy"),
      ("losses/binary_ce.nn", "the same, two outputs, softmax cross-entropy"),
      ("losses/multiclass_ce.nn", "three spirals, cross-entropy from logits")],
     "The two binary formulations learn alike, as the notes derive: "
     "softmax over two logits is the sigmoid of their difference."),
    ("Autoencoders",
     "Unsupervised: these models have no label; nnc reports their loss.",
     [("autoencoder/conv_anomaly.nn", "a conv autoencoder (conv_transpose2d decoder) trained on sneakers flags other clothes"),
      ("autoencoder/vae.nn", "a variational autoencoder: `normal` sampling, KL term")],
     ""),
    ("Recurrent networks",
     "",
     [("rnn/binary_addition.nn", "binary addition, unrolled by a compile-time `for`, shared weights"),
      ("rnn/binary_addition_lstm.nn", "the same task with the `lstm` layer (16 units) and a dense readout")],
     "`accuracy` is the model's own output: a sum counts only if all 8 bits "
     "are right. The issue asked for teacher forcing: in binary addition no "
     "step reads an earlier prediction, so every step is trained on the true "
     "input bits against its own target, which is what teacher forcing "
     "amounts to here."),
    ("Language models on text (issue 21)",
     "Debian's fortunes (`/usr/share/games/fortunes`) through `text(...)`: the first 90 % "
     "for training, the rest scored; windows of the model's context with next-byte labels. "
     "Losses are per byte, in bits (`nnc run` prints nats and bits). Each row's curve "
     "(`--plot`) and a sample of its checkpoint follow the table.",
     [("transformer/char_transformer.nn", "a character GPT: byte and position embeddings, 4 pre-norm "
       "`transformer_block`s (4 causal heads, d 128, gelu MLP 512), context 128, batch 32; AdamW lr 1e-3, "
       "100 warmup steps then cosine, gradient norm clipped at 1, 2,000 steps"),
      ("rnn/char_lstm.nn", "an LSTM language model: an embedding of 64, `lstm` of 256 units unrolled over "
       "a context of 64, batch 32; Adam lr 0.002 with a cosine schedule, clipping at 1, 6,000 steps")],
     "[transformer/torch_char_transformer.py](transformer/torch_char_transformer.py) trains the "
     "transformer in PyTorch 1.13 with the same layers, initialization, windows, split, optimizer, "
     "schedule and clipping (not run by CI, nor by scripts/gallery.py): "
     "`/usr/bin/python3 examples/transformer/torch_char_transformer.py --threads 1 --log-every 566` "
     "scores it at the steps where nnc's epochs end. docs/performance.md has its figures beside nnc's."),
    ("Convolution blocks",
     "",
     [("blocks/depthwise_separable.nn", "a depthwise 3×3 (groups = channels) + pointwise 1×1 block"),
      ("blocks/residual.nn", "two residual blocks (skip connections)")],
     ""),
    ("CNNs at the FMA limit (issue 19)",
     "Batch 64, Adam lr 0.001, the shapes of `bench/bench_conv.cpp`'s conv-layer table; "
     "`bench/torch_reference.py` builds both in PyTorch.",
     [("cnn/vgg.nn", "VGG-style: 3×3 pad-1 convolutions, 32 channels @28² and 64 @14², max-pooling, 1 epoch"),
      ("cnn/mobile_resnet.nn", "batchnorm, a stride-2 3×3, a residual block, a depthwise 3×3 at stride 2, a 1×1, 1 epoch")],
     ""),
]

NUM = r"([-0-9.e+]+|NaN)"


def measure(nnc, example, extra):
    path = os.path.join("examples", example)
    text = open(os.path.join(ROOT, path)).read()
    trains = "\ntrain " in text
    cmd = [nnc, "run", path, "--quiet"] + extra if trains else [nnc, "eval", path]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    return trains, p.stdout, secs


def result(trains, out):
    if not trains:
        return "; ".join(l.strip() for l in out.strip().splitlines())
    epochs = [l for l in out.splitlines() if re.match(r"epoch \d+:", l)]
    last = epochs[-1]

    def grab(pattern):
        m = re.search(pattern + " " + NUM, last)
        return float(m.group(1)) if m else None

    parts = []
    if (b := re.search(r"test loss " + NUM + r" \(" + NUM + r" bits/(byte|char)\)", last)):
        parts.append(f"test loss **{float(b.group(2)):.4f} bits/{b.group(3)}** ({float(b.group(1)):.4g} nats)")
        return ", ".join(parts)
    for label, pattern in (("train-set acc.", r"train-set accuracy"), ("test acc.", r"test accuracy"),
                           ("test loss", r"test loss"), ("test sums right", r"test loss [-0-9.e+]+, accuracy")):
        v = grab(pattern)
        if v is not None:
            parts.append(f"{label} **{v:.4f}**" if "acc" in label or "right" in label else f"{label} {v:.4g}")
    if (v := grab("train-set accuracy")) is not None and (t := grab("test accuracy")) is not None:
        parts.append(f"gap {v - t:+.4f}")
    parts.append(f"train loss {grab('train loss'):.4g}")
    return ", ".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", default="build/nnc")
    ap.add_argument("--out", default="examples/README.md")
    args = ap.parse_args()
    nnc = os.path.abspath(os.path.join(ROOT, args.nnc))
    lines = [
        "# Examples",
        "",
        "Each experiment from the course notes is one `.nn` file and one command.",
        "The results below are from full runs on "
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, written by "
        "`python3 scripts/gallery.py`, which runs them all (TOTAL_TIME here). The tests",
        "(`tests/test_examples.cpp`) run every example at reduced size, and the",
        "binary-addition, spiral, regression and anomaly examples in full or nearly.",
        "Accuracies are on the test split; wall time includes compiling and loading data.",
        "",
    ]
    extras, samples = [], []
    t0 = time.monotonic()
    for title, intro, items, notes in SECTIONS:
        lines += [f"## {title}", ""]
        if intro:
            lines += [intro, ""]
        lines += ["| example | command | shows | result | wall |", "|---|---|---|---|---|"]
        for example, shows in items:
            extra = ["--plot", "examples/autoencoder/vae.svg"] if example == "autoencoder/vae.nn" else []
            language = "text(" in open(os.path.join(ROOT, "examples", example)).read()
            ckpt = tempfile.mkdtemp() if language else None
            if language:
                extra = ["--plot", "examples/" + example.replace(".nn", ".svg"), "--save", ckpt]
            trains, out, secs = measure(nnc, example, extra)
            if language:
                sample = [nnc, "sample", "examples/" + example, "--weights", ckpt, "--prompt", "The ", "--tokens",
                          "300", "--temperature", "0.8", "--seed", "1"]
                text = subprocess.run(sample, cwd=ROOT, capture_output=True, text=True, check=True).stdout
                samples.append((example, shlex.join(sample[1:3] + ["--weights", "ckpt"] + sample[5:]), text))
                shutil.rmtree(ckpt)
            print(f"{example}: {secs:.1f} s", file=sys.stderr)
            verb = "run" if trains else "eval"
            lines.append(f"| [{example}]({example}) | `nnc {verb} examples/{example}` | {shows} | "
                         f"{result(trains, out)} | {secs:.1f} s |")
            table = out[out.find("' per class"):] if "' per class" in out else ""
            if table:
                start = out.rfind("\n", 0, out.find("' per class")) + 1
                extras.append((example, out[start:]))
        lines.append("")
        if notes:
            lines += [notes, ""]
        for example, text in extras:
            lines += [f"`nnc run examples/{example}` ends with:", "", "```", text.rstrip(), "```", ""]
        extras = []
        for example, cmd, text in samples:
            name = example.replace(".nn", "")
            lines += [f"![{name} loss]({name}.svg)", "", f"`nnc {cmd}`:", "", "```", text.rstrip(), "```", ""]
        samples = []
        if title == "Autoencoders":
            lines += ["The VAE's loss curve (`--plot`):", "", "![VAE loss](autoencoder/vae.svg)", ""]
    total = time.monotonic() - t0
    text = "\n".join(lines).replace("TOTAL_TIME", f"{total / 60:.1f} minutes")
    with open(os.path.join(ROOT, args.out), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
