import pytest
import torch

from fixtures import TINY_CONFIGS, make_tiny_model
from langneurons.core.errors import LangNeuronsError
from langneurons.models import FFN_REGISTRY, ffn_layers, ffn_shape, ffn_spec


def test_every_registered_family_has_a_tiny_model():
    assert set(TINY_CONFIGS) >= set(FFN_REGISTRY) - {"gemma3"}


@pytest.mark.parametrize("model_type", sorted(TINY_CONFIGS))
def test_ffn_layers_resolve_and_act_output_is_the_neuron(model_type):
    model = make_tiny_model(model_type)
    layers = ffn_layers(model)
    shape = ffn_shape(model)
    assert len(layers) == shape.num_layers == 2
    assert shape.hidden_size == 32
    seen = {}
    hooks = [layer.act.register_forward_hook(lambda m, i, o, k=layer.index: seen.__setitem__(k, o.shape)) for layer in layers]
    with torch.no_grad():
        model(torch.randint(0, 100, (1, 5)))
    for h in hooks:
        h.remove()
    # The activation module's output has one value per neuron: that is what LAPE counts.
    assert seen == {i: torch.Size([1, 5, shape.ffn_size]) for i in range(2)}


def test_unknown_architecture_names_supported_ones_and_where_to_add():
    class Cfg:
        model_type = "mamba"

    with pytest.raises(LangNeuronsError, match=r"supported: .*llama.*FFN_REGISTRY in langneurons/models/registry.py"):
        ffn_spec(Cfg())
