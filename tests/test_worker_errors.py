"""A DataError raised while a DataLoader worker process reads an image (a file that changed or
went away after the check, a table written without its images' check) reaches the script as
itself, for cli.run's one line: torch re-raised it as a RuntimeError carrying the worker's
traceback (imgdag.images.ImageLoader, the loader of evaluation and feature extraction)."""
import io

import pytest
from PIL import Image

from e2e import script
from imgdag.errors import DataError
from imgdag.images import ImageLoader
from imgdag.multicrop import ImageFiles
from imgdag.transfer import ResizedImages


@pytest.fixture
def files(tmp_path):
    """A good JPEG and a truncated one."""
    data = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(data, "JPEG")
    (tmp_path / "good.jpg").write_bytes(data.getvalue())
    (tmp_path / "cut.jpg").write_bytes(data.getvalue()[:200])
    return [tmp_path / "good.jpg", tmp_path / "cut.jpg"]


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("dataset", [lambda paths: ImageFiles(paths, [0, 1], 32),
                                     lambda paths: ResizedImages(paths, 32)], ids=["eval", "features"])
def test_a_data_error_in_a_worker_reaches_the_caller_as_itself(files, dataset, workers):
    loader = ImageLoader(dataset(files), batch_size=2, num_workers=workers)
    assert len(loader) == 1
    with pytest.raises(DataError) as e:
        list(loader)
    assert e.value.path == str(files[1]) and "\n" not in str(e.value)


def test_batches_without_errors_are_the_data_loaders(files):
    images, labels = next(iter(ImageLoader(ImageFiles(files[:1] * 3, [0, 1, 2], 32), batch_size=3, num_workers=1)))
    assert images.shape == (3, 3, 32, 32) and labels.tolist() == [0, 1, 2]


def failed_feature_extraction(folder, images: list[str], backbone: str, workers: int) -> str:
    """extract_features.py's last line on `images` (names under `folder`), which must fail in one line."""
    (folder / "list.lst").write_text("".join(f"{i}\t0\t{name}\n" for i, name in enumerate(images)))
    done = script("extract_features.py", "--backbone", f'{{"name": "{backbone}", "weights": "none.pth", "size": 32}}',
                  "--params", f'{{"batch_size": 2, "num_workers": {workers}, "device": "cpu"}}', "--root", folder,
                  "--lists", folder / "list.lst", "--cache-dir", folder / "cache", "--out", folder / "f.npz", ok=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_extract_features_names_the_image_in_one_line(files, tmp_path):
    last = failed_feature_extraction(tmp_path, ["good.jpg", "cut.jpg"], "resnet18", workers=1)
    assert last.startswith(f"error: {files[1]}: "), last


def test_extract_features_names_a_backbone_torchvision_does_not_have(files, tmp_path):
    last = failed_feature_extraction(tmp_path, ["good.jpg"], "notamodel", workers=0)
    assert last == ("error: --backbone: 'notamodel' is not a torchvision classification model "
                    "(torchvision.models.list_models() names them)")
