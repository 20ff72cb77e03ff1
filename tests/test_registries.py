"""One test per registry, parametrised over its entries: a new entry is tested by adding it.

Registries: model-side poolings (crosskd.experts.POOLINGS with their layers in
crosskd.models.pooling), fixed temporal statistics, token-expert widths, text feature widths,
objective terms (crosskd.losses.terms.TERMS) and ranking losses by name.
"""

from __future__ import annotations

import copy

import pytest
import torch

from crosskd import experts
from crosskd.config import model_spec, objective_spec
from crosskd.config.model import model_dims
from crosskd.data.batch import Batch
from crosskd.data.synth import SynthSpec, example_config
from crosskd.errors import ConfigError
from crosskd.losses import RANKING_LOSSES, TERMS, build_objective
from crosskd.losses.spec import ObjectiveSpec
from crosskd.models import build_model
from crosskd.models.pooling import POOLING_LAYERS, pooling_layer

def _config() -> dict:
    spec = SynthSpec(videos=10, visual_dims={name: 8 for name in SynthSpec().visual_dims})
    return example_config(spec, "unused")


def test_every_pooling_has_a_layer_and_no_layer_lacks_a_pooling():
    assert set(POOLING_LAYERS) == set(experts.POOLINGS)


@pytest.mark.parametrize("kind", sorted(experts.POOLINGS))
@pytest.mark.parametrize("expert", sorted(experts.TOKEN_DIMS))
def test_a_pooled_expert_has_the_width_its_pooling_promises(kind, expert):
    pooling = experts.POOLINGS[kind]
    config = _config()
    config["experts"]["modalities"] = [expert]
    config["data_loader"]["args"]["feat_aggregation"] = {expert: {"temporal": kind}}
    config["arch"]["args"][pooling.size_key] = {"text": 3, expert: 4}
    dims = model_dims(config)
    token = experts.TOKEN_DIMS[expert]
    assert dims.raw_input_dims[expert] == token
    assert dims.expert_dims[expert][0] == pooling.pooled_width(token, 4)
    assert dims.pooled == {expert: (kind, 4)}
    layer = pooling_layer(kind, token, 4)
    pooled = layer(torch.randn(2, 5, token))
    assert pooled.shape == (2, pooling.pooled_width(token, 4))
    model = build_model(model_spec(config))
    assert isinstance(model.pooling[expert], type(layer))


@pytest.mark.parametrize("statistics", [*experts.FIXED_STATISTICS,
                                        "-".join(experts.FIXED_STATISTICS)])
def test_fixed_statistics_concatenate_one_vector_each(statistics):
    config = _config()
    name = "scene.densenet161.0"
    config["data_loader"]["args"]["feat_aggregation"][name]["temporal"] = statistics
    temporal = experts.temporal_aggregation(statistics, "key")
    assert not temporal.variable_length
    assert model_dims(config).raw_input_dims[name] == 8 * len(statistics.split("-"))


def test_an_unknown_temporal_aggregation_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match="temporal.*'mean'.*vlad or avg/max"):
        experts.temporal_aggregation("mean", "data_loader.args.feat_aggregation.x.temporal")


@pytest.mark.parametrize("text_feat", sorted(experts.TEXT_FEATURE_DIMS))
def test_every_text_feature_width_builds_the_text_branch(text_feat):
    config = _config()
    config["experts"]["text_feat"] = text_feat
    with torch.device("meta"):
        model = build_model(model_spec(config))
    assert model.dims.text_dim == experts.TEXT_FEATURE_DIMS[text_feat]


def _every_switch_on() -> dict:
    config = _config()
    config.update(distil_loss=True, ranking_loss=True,
                  ranking_params={"cap_w": 1.0, "cap_t": 5.0, "vid_w": 0.5, "vid_t": 2.0})
    return config


def _output_and_batch(n: int = 4) -> tuple[dict[str, torch.Tensor], Batch]:
    gen = torch.Generator().manual_seed(0)
    output = {key: torch.randn(n, n, generator=gen, requires_grad=True) for key in
              ("cross_view_conf_matrix", "cross_view_text_matrix", "cross_view_vid_matrix")}
    empty = torch.empty(0)
    batch = Batch(experts={}, ind={}, text=empty, text_token_mask=empty,
                  distil_text={0: {"audio": torch.randn(n, 1, 3, generator=gen)}},
                  distil_video={0: {"audio": torch.randn(n, 3, generator=gen)}})
    return output, batch


def test_the_config_layer_can_switch_on_every_term_kind():
    kinds = {term.kind for term in objective_spec(_every_switch_on()).terms}
    assert kinds == set(TERMS)


@pytest.mark.parametrize("kind", sorted(TERMS))
def test_every_term_maps_output_and_batch_to_a_differentiable_scalar(kind):
    spec = next(t for t in objective_spec(_every_switch_on()).terms if t.kind == kind)
    objective = build_objective(ObjectiveSpec((spec,)))
    output, batch = _output_and_batch()
    total, values = objective.terms(output, batch)
    assert total.dim() == 0 and torch.isfinite(total)
    assert set(values) == {spec.name} and values[spec.name].dtype == torch.float32
    total.backward()
    assert output["cross_view_conf_matrix"].grad is not None


@pytest.mark.parametrize("name", sorted(RANKING_LOSSES))
def test_every_ranking_loss_is_reachable_by_its_config_name(name):
    config = copy.deepcopy(_config())
    config["loss"] = {"type": name, "args": {"margin": 0.1}}
    objective = build_objective(objective_spec(config))
    output, _ = _output_and_batch()
    total, values = objective(output)
    assert torch.isfinite(total) and set(values) == {"ranking"}
