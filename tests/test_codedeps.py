"""Rule code inputs: a script plus the imgdag modules it imports, transitively, and what an edit
to each module stales."""
import yaml
from conftest import ROOT

from imgdag.codedeps import code_files, model_code_files
from imgdag.model_registry import BUILDERS


def test_train_script_depends_on_engine_and_the_model_registry():
    files = code_files("scripts/train.py")
    assert files[0] == "imgdag/__init__.py"
    for module in ("scripts/train.py", "imgdag/engine.py", "imgdag/batches.py",
                   "imgdag/models/__init__.py", "imgdag/model_registry.py", "imgdag/atomic.py"):
        assert module in files
    assert "imgdag/layouts/mnist_idx.py" not in files  # not imported by training
    # models are built by name at run time: a rule names its model (rules/common.smk `code`)
    assert not [f for f in files if f.startswith("imgdag/models/") and not f.endswith("__init__.py")]
    assert model_code_files("lenet5") == ["imgdag/models/lenet.py"]
    assert model_code_files("alexnet") == []  # torchvision's


def test_transitive_imports_are_followed():
    files = code_files("scripts/mnist_to_pngs.py")
    # mnist_to_pngs imports image_files, which imports the .lst writer
    assert "imgdag/formats/image_files.py" in files
    assert "imgdag/formats/lst.py" in files
    assert "imgdag/engine.py" not in files


def test_demo_script_does_not_depend_on_every_demo():
    # make_demo.py imports a demo module by name; each demo rule adds its own module
    files = code_files("scripts/make_demo.py")
    assert not [f for f in files if f.startswith("imgdag/demo/") and f != "imgdag/demo/__init__.py"]
    assert "imgdag/demo/dog_breed.py" not in code_files("imgdag/demo/mnist.py")
    assert "imgdag/demo/shapes.py" in code_files("imgdag/demo/dog_breed.py")


# --- what an edit to each module stales -------------------------------------------------------
# DVC reruns a stage when one of its deps changes, and dvc.yaml's deps are the rules' code inputs
# (tests/test_dvc_yaml.py keeps it current): a module's stages are those listing it.

# scripts that train, evaluate or predict: they read prepared data, never raw layouts
RUN_SCRIPTS = ("scripts/train.py", "scripts/evaluate.py", "scripts/predict.py", "scripts/evaluate_crops.py",
               "scripts/model_classes.py", "scripts/extract_features.py", "scripts/train_transfer_head.py")


def stales() -> dict[str, set[str]]:
    """imgdag module -> the dvc.yaml stages an edit to it stales."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "imgdag").rglob("*.py")}
    return {m: {name for name, s in stages.items() if m in s.get("deps", [])} for m in sorted(modules)}


def run_stages() -> set[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name for name, s in stages.items() if set(RUN_SCRIPTS) & set(s.get("deps", []))}


def is_writer_or_walker(module: str) -> bool:
    """Writers, packers, archive extraction and the layout walkers (all of imgdag/layouts but
    the record shape their readings return)."""
    return (module.endswith("_writer.py") or module in ("imgdag/formats/recordio_packer.py",
            "imgdag/extract.py", "imgdag/imagecheck.py")
            or (module.startswith("imgdag/layouts/")
                and module not in ("imgdag/layouts/__init__.py", "imgdag/layouts/records.py")))


def test_training_and_evaluation_run_no_writer_packer_or_layout_walker():
    runs = run_stages()
    assert {"mnist_train", "tiny_evaluate", "imagenet8_train", "ilsvrc_alexnet_crops", "dog_head"} <= runs
    stale = stales()
    assert not stale["imgdag/extract.py"] & runs
    wrong = {m: sorted(stale[m] & runs) for m in stale if is_writer_or_walker(m) and stale[m] & runs}
    assert wrong == {}


def test_readers_import_no_writer_packer_or_layout_walker():
    for reader in ("imgdag/formats/recordio.py", "imgdag/arraycache.py", "imgdag/formats/cntk_map.py",
                   "imgdag/imagedata.py", "imgdag/codec.py", "imgdag/engine.py", "imgdag/models/__init__.py",
                   *RUN_SCRIPTS[:4]):
        assert [f for f in code_files(reader) if is_writer_or_walker(f)] == [], reader


def test_a_model_file_stales_only_the_recipes_that_build_it():
    stale = stales()
    assert stale["imgdag/models/lenet.py"] == {"mnist_train", "mnist_evaluate", "mnist_predict"}
    assert stale["imgdag/models/resnet_small.py"] == {"tiny_train", "tiny_evaluate", "tiny_predict"}
    # ILSVRC's crops (multicrop's Caffe preprocessing); imagenet8 trains torchvision's AlexNet
    assert stale["imgdag/models/caffe_alexnet.py"] == {"ilsvrc_alexnet_crops"}
    modules = {f"imgdag/models/{m.split(':')[0].rsplit('.', 1)[1]}.py" for m in BUILDERS.values()
               if m.startswith("imgdag.")}
    assert modules == {"imgdag/models/lenet.py", "imgdag/models/resnet_small.py", "imgdag/models/caffe_alexnet.py"}
