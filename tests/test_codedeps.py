"""Rule code inputs: a script plus the imgdag modules it imports, transitively."""
from imgdag.codedeps import code_files, model_code_files


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
