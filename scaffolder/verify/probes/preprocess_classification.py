"""preprocess_parity adapter for classification (see preprocess_parity.py for the contract).

Training side: the port's own data module (``setup("test")``: classification_pyt's CLDataset, split ``val``,
i.e. the eval transform) over ``--images``. Deploy side: the generated deploy loader built the way the
generated deploy scripts build it (engine input shape, the spec's ``dataset.augmentation.mean/std``, batch 1,
float32). Stock: TAO's classification deploy loader defaults (bicubic, aspect-preserving resize + centre crop),
what the generated loader must not do.
"""

from __future__ import annotations

import os

from _common import load_object  # pylint: disable=import-error

TOP1 = True  # argmax over the logits is the prediction
NORMALISATION_KEYS = ("dataset.augmentation.mean", "dataset.augmentation.std")


def training_overrides(args):
    return [f"dataset.root_dir={args.root}", f"dataset.val_dataset.images_dir={args.images}"]


def normalisation(cfg):
    return list(cfg.dataset.augmentation.mean), list(cfg.dataset.augmentation.std)


def train_tensors(cfg, args):
    data_module = load_object(args.data_module)(cfg.dataset)
    data_module.setup(stage="test")
    dataset = data_module.test_dataset
    return {os.path.realpath(dataset[i]["name"]): dataset[i]["img"].numpy() for i in range(len(dataset))}


def _class_mapping(args):
    loader_module = load_object(args.loader.split(":")[0] + ":")
    if hasattr(loader_module, "read_class_mapping"):
        return loader_module.read_class_mapping(args.root, args.images)
    return {d: i for i, d in enumerate(sorted(os.listdir(args.images)))}


def _loader_tensors(loader):
    out = {}
    for index, (images, _labels) in enumerate(loader):
        for j in range(len(images)):
            out[os.path.realpath(str(loader.image_paths[index * loader.batch_size + j]))] = images[j]
    return out


def deploy_tensors(dcfg, args, shape, mean, std):
    import numpy as np

    loader = load_object(args.loader)(shape, [args.images], _class_mapping(args), batch_size=1, image_mean=mean,
                                      image_std=std, dtype=np.float32)
    return _loader_tensors(loader)


def stock_tensors(args, shape, mean, std):
    import numpy as np

    stock_class = load_object("nvidia_tao_deploy.cv.classification_tf1.dataloader:ClassificationLoader")
    return _loader_tensors(stock_class(shape, [args.images], _class_mapping(args), is_inference=True,
                                       data_format="channels_first", mode="torch", batch_size=1, image_mean=mean,
                                       image_std=std, dtype=np.float32))
