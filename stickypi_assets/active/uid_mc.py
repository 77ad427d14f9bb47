"""MC-dropout passes of the UID's torchvision Mask R-CNN: backbone and RPN once per tile, only the ROI heads repeat.

torchvision's Mask R-CNN has no dropout layer, so maskAL's recipe is applied inside the head forward instead of
patching modules (the trained model is never changed, and the normal predictor stays deterministic): dropout with
probability ``p`` (maskAL: 0.25) on the input of each fully connected layer of the box head (``fc6``, ``fc7``),
before ``cls_score``/``bbox_pred``, and before the mask head's deconvolution and its 1×1 predictor. Per tile the
backbone, the RPN and the box RoIAlign run once; each pass repeats only the two FC layers and the predictors (and,
with masks, the mask RoIAlign of that pass's boxes and the mask head). A box-only pass (``with_masks=False``) is
the cheap one that ranks a whole pool; the mask term is computed for its top.

The dropout masks come from a ``torch.Generator`` seeded per image, so an image's score depends on the seed and
the image, never on the order a pool is scored in; CPU and CUDA alike (the generator lives on the model's device).

Each pass's detections go through torchvision's own rules (softmax, per-class NMS, score threshold, top-k), with the
UID's ``SCORE_THRESHOLD`` applied before the NMS and the mask head (the predictor drops anything below it anyway, and
masks for torchvision's 0.05 floor cost more than the backbone), and then through the UID's tile filters
(:func:`~stickypi_assets.ml.uid.postprocess.keep_tile_detections`: score, size and inner edges), so a pass
sees what the predictor would have kept. Unlike torchvision, each detection keeps its whole softmax row (the
semantic term needs it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import boxes as box_ops

from stickypi_assets.active.certainty import ImageCertainty, LocalMask, PassDetection, image_certainty
from stickypi_assets.active.mc_dropout import DEFAULT_DROPOUT, DEFAULT_PASSES, seed_for
from stickypi_assets.active.mc_dropout import dropout as mc_dropout
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.detector import TileDetections
from stickypi_assets.ml.uid.model import MaskRCNNDetector, bgr_to_tensor
from stickypi_assets.ml.uid.postprocess import keep_tile_detections, paste_box_mask
from stickypi_assets.ml.uid.tiling import iter_tile_batches, pad_image, plan_tiles


@dataclass
class ImagePasses:
    """The detections of each pass over a whole image (image pixels) and the image's backbone embedding."""

    passes: list[list[PassDetection]]
    embedding: np.ndarray
    n_tiles: int

    def certainty(self, **kwargs) -> ImageCertainty:
        """maskAL's certainty (keyword arguments of :func:`~stickypi_assets.active.certainty.image_certainty`)."""
        return image_certainty(self.passes, **kwargs)


class McDropoutMaskRCNN:
    """Samples a trained :class:`~stickypi_assets.ml.uid.model.MaskRCNNDetector` with MC dropout in its ROI heads."""

    def __init__(
        self,
        detector: MaskRCNNDetector,
        config: UidConfig,
        *,
        passes: int = DEFAULT_PASSES,
        dropout: float = DEFAULT_DROPOUT,
        seed: int = 0,
    ) -> None:
        if not isinstance(detector, MaskRCNNDetector):
            raise TypeError(f"MC dropout needs the torchvision Mask R-CNN, not {type(detector).__name__}")
        if passes < 1:
            raise ValueError("passes must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        self.detector, self.config = detector, config
        self.passes, self.dropout, self.seed = int(passes), float(dropout), int(seed)

    # -- one batch of tiles -----------------------------------------------------------------------------------

    def _box_pass(self, box_features, proposals, image_sizes, generator):
        roi = self.detector.model.roi_heads
        head, predictor, p = roi.box_head, roi.box_predictor, self.dropout
        x = box_features.flatten(start_dim=1)
        x = F.relu(head.fc6(mc_dropout(x, p, generator)))
        x = F.relu(head.fc7(mc_dropout(x, p, generator)))
        x = mc_dropout(x, p, generator)
        logits, regression = predictor.cls_score(x), predictor.bbox_pred(x)
        boxes = roi.box_coder.decode(regression, proposals)
        probs = F.softmax(logits, -1)
        out = []
        counts = [len(p_) for p_ in proposals]
        for img_boxes, img_probs, size in zip(boxes.split(counts), probs.split(counts), image_sizes, strict=True):
            img_boxes = box_ops.clip_boxes_to_image(img_boxes, size)
            n, k = img_probs.shape
            row = torch.arange(n, device=img_probs.device).view(-1, 1).expand(n, k - 1).reshape(-1)
            labels = torch.arange(1, k, device=img_probs.device).view(1, -1).expand(n, k - 1).reshape(-1)
            cand_boxes = img_boxes[:, 1:].reshape(-1, 4)
            scores = img_probs[:, 1:].reshape(-1)
            # the predictor's own score filter, applied before NMS and the mask head: nothing below it is kept
            # later, and the mask head on torchvision's 0.05 floor would cost T times the day's inference
            keep = torch.where(scores > max(roi.score_thresh, self.config.score_threshold))[0]
            keep = keep[box_ops.remove_small_boxes(cand_boxes[keep], min_size=1e-2)]
            keep = keep[box_ops.batched_nms(cand_boxes[keep], scores[keep], labels[keep], roi.nms_thresh)]
            keep = keep[: roi.detections_per_img]
            out.append((cand_boxes[keep], scores[keep], labels[keep], img_probs[row[keep]]))
        return out

    def _mask_pass(self, features, boxes, labels, image_sizes, generator):
        roi = self.detector.model.roi_heads
        if sum(len(b) for b in boxes) == 0:
            return [torch.zeros((0, 28, 28), device=f.device) for f in boxes]
        x = roi.mask_head(roi.mask_roi_pool(features, boxes, image_sizes))
        predictor = roi.mask_predictor
        x = F.relu(predictor.conv5_mask(mc_dropout(x, self.dropout, generator)))
        logits = predictor.mask_fcn_logits(mc_dropout(x, self.dropout, generator))
        flat_labels = torch.cat(labels)
        probs = logits[torch.arange(len(flat_labels), device=logits.device), flat_labels].sigmoid()
        return list(probs.split([len(b) for b in boxes]))

    @torch.inference_mode()
    def tile_passes(
        self, views: list[np.ndarray], *, with_masks: bool = True, generator: torch.Generator | None = None
    ) -> tuple[list[list[TileDetections]], list[list[np.ndarray]], torch.Tensor]:
        """For each tile: each pass's detections (tile pixels, masks as ``M×M`` box-frame maps), each detection's
        softmax row, and the tiles' pooled top-level backbone features (``(tiles, C)``)."""
        model = self.detector.model
        model.eval()
        device = self.detector.device
        if generator is None:
            generator = torch.Generator(device=device).manual_seed(self.seed)
        tensors = [bgr_to_tensor(v, device) for v in views]
        image_list, _ = model.transform(tensors)
        features = self.detector.backbone_features(image_list.tensors)
        proposals, _ = model.rpn(image_list, features)
        sizes = image_list.image_sizes
        box_features = model.roi_heads.box_roi_pool(features, proposals, sizes)
        dets: list[list[TileDetections]] = [[] for _ in views]
        rows: list[list[np.ndarray]] = [[] for _ in views]
        for _ in range(self.passes):
            per_tile = self._box_pass(box_features, proposals, sizes, generator)
            boxes = [b for b, _, _, _ in per_tile]
            labels = [lab for _, _, lab, _ in per_tile]
            if with_masks:
                masks = self._mask_pass(features, boxes, labels, sizes, generator)
            else:
                masks = [torch.zeros((len(b), 0, 0), device=b.device) for b in boxes]
            for i, ((b, s, lab, prob), m) in enumerate(zip(per_tile, masks, strict=True)):
                dets[i].append(
                    TileDetections(
                        boxes=b.float().cpu().numpy(),
                        scores=s.float().cpu().numpy(),
                        labels=(lab - 1).cpu().numpy(),
                        masks=m.float().cpu().numpy(),
                    )
                )
                rows[i].append(prob.float().cpu().numpy())
        top = features[list(features)[-1]]
        embedding = top.mean(dim=(2, 3)).float().cpu()
        return dets, rows, embedding

    # -- a whole image ----------------------------------------------------------------------------------------

    def image_passes(self, image: np.ndarray, *, key: str = "", with_masks: bool = True) -> ImagePasses:
        """All passes over a BGR image tiled as :func:`~stickypi_assets.ml.uid.predict.predict_image` tiles it;
        detections in image pixels, filtered by the UID's tile rules. ``key`` (e.g. the image's md5) seeds the
        dropout masks together with ``seed``."""
        config = self.config
        padding = config.original_image_padding
        padded = pad_image(image, padding)
        tiles = plan_tiles(padded.shape[1], padded.shape[0], config.tile_size, config.tile_overlap)
        generator = torch.Generator(device=self.detector.device).manual_seed(seed_for(self.seed, key))
        passes: list[list[PassDetection]] = [[] for _ in range(self.passes)]
        embeddings = []
        for batch_tiles, views in iter_tile_batches(padded, tiles, config.tile_batch_size):
            dets, rows, embedding = self.tile_passes(views, with_masks=with_masks, generator=generator)
            embeddings.append(embedding)
            for tile, tile_dets, tile_rows in zip(batch_tiles, dets, rows, strict=True):
                dx, dy = tile.x - padding, tile.y - padding
                for t, (det, prob) in enumerate(zip(tile_dets, tile_rows, strict=True)):
                    for j in keep_tile_detections(det, tile, config):
                        mask = None
                        if with_masks:
                            pasted = paste_box_mask(det.masks[j], det.boxes[j], tile.width, tile.height)
                            if pasted is None:
                                continue
                            binary, x0, y0 = pasted
                            mask = LocalMask(binary, x0 + dx, y0 + dy)
                        box = det.boxes[j] + np.array([dx, dy, dx, dy], dtype=np.float32)
                        passes[t].append(PassDetection(box, prob[j], int(det.labels[j]), mask))
        embedding = torch.cat(embeddings).mean(dim=0).numpy().astype(np.float32)
        return ImagePasses(passes, embedding, len(tiles))
