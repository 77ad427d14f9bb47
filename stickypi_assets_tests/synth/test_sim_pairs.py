"""SIM training pairs and tracking truth from the generator's ground truth."""

from __future__ import annotations

import numpy as np

from stickypi_assets.formats.sim_svg import read_sim_svg
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.sim_pairs import ground_truth_pairs, ground_truth_tracks, write_pair_svgs

CONFIG = SynthConfig(devices=1, days=1, seed=4, width=480, height=360, arrival_rate_day=6.0)


def test_pairs_group_the_same_insects_and_round_trip(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    generate(CONFIG, store)
    truth = ground_truth_tracks(store)
    pairs = list(ground_truth_pairs(store, every=3, limit=6))
    assert len(pairs) == 6
    stems = sorted(truth.image_stem.unique())
    n_grouped = 0
    for pair in pairs:
        assert pair.datetime0 < pair.datetime1
        s0, s1 = pair.frame0.metadata["datetime"], pair.frame1.metadata["datetime"]
        assert stems.index(f"{pair.device}.{s1}") == stems.index(f"{pair.device}.{s0}") + 1  # consecutive
        for i0, i1 in pair.groups:  # a group is one insect: it barely moves in 20 minutes
            c0 = np.array(pair.frame0.instances[i0].centroid)
            c1 = np.array(pair.frame1.instances[i1].centroid)
            assert np.hypot(*(c1 - c0)) < 30
        n_grouped += len(pair.groups)
        # every insect visible in both frames is grouped, none twice
        t0 = set(truth[truth.image_stem == f"{pair.device}.{s0}"].insect_id)
        t1 = set(truth[truth.image_stem == f"{pair.device}.{s1}"].insect_id)
        assert len(pair.groups) == len(t0 & t1)
    assert n_grouped > 10
    paths = write_pair_svgs(pairs, tmp_path / "data")
    back = read_sim_svg(paths[0])
    assert back.groups == pairs[0].groups and back.device == pairs[0].device
    assert len(back.frame0.instances) == len(pairs[0].frame0.instances)
