"""train() and finetune() are phase lists over the one run lifecycle (training.lifecycle): neither
compiles, builds callbacks or fits on its own, and BatchNorm is synchronised in one place."""
from __future__ import annotations

import ast
import inspect
import textwrap

from ecg_keras.training import lifecycle, loop, transfer

#: what only the lifecycle does: compile, fit, callbacks, checkpoints, the end of a run
OWN_MACHINERY = {"compile", "fit", "fit_epochs", "Callback", "callbacks", "Checkpointer", "compile_model",
                 "optimizer_for", "restore_checkpoint", "mark_complete", "save_model", "synchronized"}


def own_machinery(source: str) -> list[str]:
    """Names and attributes of ``OWN_MACHINERY`` used in ``source`` (a function or module)."""
    found = []
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if isinstance(node, (ast.ImportFrom,)):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name in OWN_MACHINERY]
        value = getattr(node, "value", None)
        if name == "fit" and isinstance(value, ast.Name) and value.id == "Standardizer":
            continue  # fitting the standardiser is data preparation, not training
        if name in OWN_MACHINERY:
            found.append(f"line {node.lineno}: {name}")
        if isinstance(node, ast.ClassDef):
            found.append(f"line {node.lineno}: class {node.name}")
    return found


def test_checker_finds_planted_machinery():
    planted = "def finetune(model, opt, loss):\n    model.compile(optimizer=opt, loss=loss)\n    model.fit(ds)\n"
    assert own_machinery(planted) == ["line 2: compile", "line 3: fit"]
    assert own_machinery("import keras\nclass Tag(keras.callbacks.Callback):\n    pass\n") != []
    assert own_machinery("def f(lifecycle, start, model, phases):\n    return lifecycle.run_phases(start, model, "
                         "phases, info={})\n") == []


def test_finetune_and_train_have_no_compile_callbacks_or_fit_of_their_own():
    for fn in (transfer.finetune, transfer.finetune_phases, loop.train):
        assert own_machinery(inspect.getsource(fn)) == [], fn.__qualname__
    # nor anywhere else in their modules (no callback classes, no private copy of the loop)
    assert own_machinery(inspect.getsource(transfer)) == []
    assert own_machinery(inspect.getsource(loop)) == []
    for fn in (transfer.finetune, loop.train):
        calls = {n.func.attr for n in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn))))
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert {"build", "run_phases", "claimed"} <= calls, fn.__qualname__


def test_finetuning_is_two_phases_over_the_lifecycle():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="body"),
                              keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2, name="head_logits")])
    groups = [[model.get_layer("body"), model.get_layer("bn")], [model.get_layer("head_logits")]]
    lrs = transfer.discriminative_lrs(1e-2, len(groups))
    p1, p2 = transfer.finetune_phases(1e-2, lrs, groups, (3, 4), train_bn=True)
    assert isinstance(p1, lifecycle.Phase) and (p1.epochs, p1.lr, p1.number, p1.multipliers) == (3, 1e-2, 1, None)
    assert (p2.epochs, p2.lr, p2.number) == (4, lrs[-1], 2)
    p1.trainable(model)
    assert [layer.trainable for layer in model.layers] == [False, True, True]  # head + backbone BatchNorm
    p2.trainable(model)
    assert all(layer.trainable for layer in model.layers)
    factors = [p2.multipliers[id(v)] for v in model.get_layer("body").weights]
    assert factors and all(abs(f - 1e-2) < 1e-12 for f in factors)  # backbone lr/1000 = head lr/10 x 1e-2
    assert [p2.multipliers[id(v)] for v in model.get_layer("head_logits").weights] == [1.0, 1.0]
