"""DETR (HF ``detr``): TAO 7.3 has no DETR network, so a DETR checkpoint is refused with the route that works."""

REFUSED = {
    "detr": (
        "TAO 7.3 has no DETR network (its detectors are RT-DETR, DINO and Deformable DETR), so a DETR checkpoint "
        "cannot be ported as a whole",
        "port its backbone under TAO's RT-DETR instead: tao-scaffold generate --model <an HF resnet/convnext "
        "checkpoint, e.g. microsoft/resnet-50> --task detection --name NAME",
    ),
}
