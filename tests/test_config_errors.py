"""A bad config stops Snakemake at parse time with a short message naming the key, the value and
what is allowed; no job (no data step) runs. Each case runs the MNIST recipe's target."""
import pytest
import yaml

from e2e import copy_repo, sh
from imgdag.model_registry import BUILDERS

pytestmark = pytest.mark.slow  # each case parses the Snakefile (seconds)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("config"))


def run_with(ws, change):
    params = yaml.safe_load((ws / "params.yaml").read_text())
    change(params, params["recipes"]["mnist_lenet5"]["train"])
    (ws / "bad.yaml").write_text(yaml.safe_dump(params))
    done = sh(["snakemake", "--cores", "1", "mnist_lenet5", "--configfile", "bad.yaml"], ws,
              check=False)
    assert done.returncode == 1
    assert not (ws / "data").exists() and not (ws / "logs").exists()  # no job ran
    return done.stdout + done.stderr


CASES = {
    "misspelt key": (lambda p, t: t.update(epoch=3),
                     ["recipes.mnist_lenet5.train: unknown key 'epoch' (did you mean 'epochs'?)",
                      "allowed: augment, batch_size"]),
    "wrong type": (lambda p, t: t.update(lr="fast"),
                   ["recipes.mnist_lenet5.train.lr: 'fast' is not of type 'number'"]),
    "exponent without a dot": (lambda p, t: t.update(lr="3e-3"),  # as YAML 1.1 reads lr: 3e-3
                               ["recipes.mnist_lenet5.train.lr: '3e-3' is text, not a number",
                                "write 3.0e-3"]),
    "unknown model": (lambda p, t: t.update(model="lenet6"),
                      ["recipes.mnist_lenet5.train.model: 'lenet6' is not allowed; allowed: lenet5"]),
    "class count": (lambda p, t: t.update(num_classes=9),
                    ["recipes.mnist_lenet5.train.num_classes: 9, expected 10"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_config_is_one_short_message(ws, case):
    change, expected = CASES[case]
    out = run_with(ws, change)
    for text in expected:
        assert text in out, out
    assert len(out.strip().splitlines()) <= 10, out


def test_cuda_without_cuda_is_refused(ws):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = run_with(ws, lambda p, t: t.update(device="cuda"))
    assert "recipes.mnist_lenet5.train.device: 'cuda' asked for, but this machine has no CUDA" in out


def test_imagenet8_class_count_is_checked_against_its_raw_folder(ws):
    for wnid in ("n01440764", "n01443537", "n01484850"):
        (ws / "raw/imagenet8/train" / wnid).mkdir(parents=True, exist_ok=True)
    out = run_with(ws, lambda p, t: p["datasets"]["imagenet8"].update(raw="raw/imagenet8"))
    assert ("recipes.imagenet8_alexnet.train.num_classes: 8, expected 3 "
            "(raw/imagenet8 has that many class folders in train/)") in out, out
    assert len(out.strip().splitlines()) <= 10, out


def test_missing_raw_path_is_named_before_any_job(ws):
    out = run_with(ws, lambda p, t: p["datasets"]["mnist"].update(raw_dir="nowhere/mnist"))
    assert "datasets.mnist.raw_dir: nowhere/mnist does not exist" in out, out


def test_schema_model_names_are_the_registered_ones():
    from e2e import ROOT

    schema = yaml.safe_load((ROOT / "schemas/params.schema.yaml").read_text())
    assert schema["$defs"]["train"]["properties"]["model"]["enum"] == list(BUILDERS)


def test_an_unknown_target_names_the_recipes(ws):
    """A misspelt recipe is an error listing the recipe targets (Snakefile's unknown_target), not
    only Snakemake's "No rule to produce"."""
    done = sh(["snakemake", "--cores", "1", "mnist_lenet"], ws, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert ("'mnist_lenet' is neither a rule nor a file a rule makes; the recipes are mnist_lenet5, "
            "imagenet8_alexnet, ilsvrc_alexnet_eval, tiny_imagenet_resnet18, dog_breed_transfer") in out, out
    assert not (ws / "data").exists() and not (ws / "logs").exists()  # no job ran
