"""What a train section of params.yaml must satisfy beyond its schema: checked before any job
against the images its recipe fixes (imgdag.config) and by scripts/train.py against the images
it reads. Light on purpose (no torch): the Snakefile imports it."""
from imgdag.model_registry import model_args_problem


def train_params_problems(train: dict, channels: int, side: int | None, images: str) -> list[str]:
    """The problems of `train` (each 'key: what is wrong'): its model_args against its model
    (and in_channels against `channels`), nesterov without momentum, a warm-up longer than the
    run, a crop larger than its resize, its normalize against `channels` channels and its augment
    crops against the images' shorter side `side` (None: not known); `images` says which images,
    in words."""
    problems = []
    model_args = train.get("model_args", {})
    if problem := model_args_problem(train["model"], model_args):
        problems.append(f"model_args: {problem}")
    elif model_args.get("in_channels", channels) != channels:
        problems.append(f"model_args.in_channels: {model_args['in_channels']}, expected {channels}, "
                        f"the channels of {images}")
    if train.get("nesterov") and train["optimizer"] == "sgd" and train.get("momentum", 0.9) == 0:
        problems.append("nesterov: true needs a momentum above 0")
    if train.get("lr_schedule") == "warmup_cosine" and train.get("warmup_epochs", 1) > train["epochs"]:
        problems.append(f"warmup_epochs: {train['warmup_epochs']}, more than epochs ({train['epochs']})")
    crop = train.get("crop")
    if crop and crop["size"] > crop["resize"]:
        problems.append(f"crop: size {crop['size']} is larger than resize {crop['resize']} "
                        "(the validation crop is cut from the resized image)")
    for stat, values in train.get("normalize", {}).items():
        if len(values) != channels:
            problems.append(f"normalize.{stat}: {len(values)} values, expected {channels}, one per channel of {images}")
    augment = train.get("augment")
    if augment and not 1 <= augment["crop_min"] <= augment["crop_max"]:
        problems.append(f"augment: crops of {augment['crop_min']}..{augment['crop_max']} pixels "
                        "(expected 1 <= crop_min <= crop_max)")
    elif augment and side is not None and augment["crop_max"] > side:
        problems.append(f"augment.crop_max: {augment['crop_max']}, more than the side of {images}, {side}")
    return problems
