"""What the learning loop needs to know about the models: per kind of item, the current model of its stage.

The annotation queue (its asset and ``stickypi al queue --update``) records a halting round per new model version
(:mod:`stickypi_assets.pipeline.al_rounds`); this says which version is current, its validation metric and how many
annotation items it can learn from.
"""

from __future__ import annotations

from stickypi_assets.active.halting import ModelState
from stickypi_assets.lifecycle.registry import ModelRegistry
from stickypi_assets.lifecycle.training import annotation_item, annotation_manifest
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.warehouse import Warehouse

#: Per kind of queued item: the stage whose model scores it and the table of its scores.
KIND_STAGES = {"image": ("uid", "image_scores"), "tuboid": ("itc", "tuboid_scores")}


def model_states(store: ObjectStore, registry: ModelRegistry, warehouse: Warehouse) -> dict[str, ModelState]:
    """Per kind, the current model of its stage (the registry's; without one, the version most of the scores
    carry, e.g. a local bundle), its validation metric and its annotation items (tuboid folders, SVGs)."""
    states = {}
    for kind, (stage, table) in KIND_STAGES.items():
        manifest = annotation_manifest(store, stage)
        n_items = len({annotation_item(m["key"]) for m in manifest if not m["key"].endswith(".db")})
        current = registry.current(stage)
        if current is not None:
            states[kind] = ModelState(current.version, current.metric_name, current.metric_value, n_items)
            continue
        top = warehouse.query(f'SELECT model_version, count(*) AS n FROM "{table}" GROUP BY 1 ORDER BY n DESC LIMIT 1')
        if len(top):
            states[kind] = ModelState(str(top["model_version"][0]), None, None, n_items)
    return states
