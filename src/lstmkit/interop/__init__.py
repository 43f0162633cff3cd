"""The ways in and out: Keras weights, ONNX export, torch.nn modules."""

from lstmkit.nn import GRU, LSTM
from lstmkit.recurrence.config import RNNConfig


def _rnn_config(module) -> RNNConfig:
    """The configuration of an lstmkit LSTM/GRU, or of a torch.nn one (plain cells, concat)."""
    if isinstance(module, LSTM | GRU):
        return module.cfg
    return RNNConfig(
        mode=module.mode,
        input_size=module.input_size,
        hidden_size=module.hidden_size,
        num_layers=module.num_layers,
        bias=bool(module.bias),
        bidirectional=bool(module.bidirectional),
        proj_size=getattr(module, "proj_size", 0),
    )


def _suffix(layer: int, direction: int) -> str:
    """The parameter names' suffix of one layer and direction: ``_l{k}[_reverse]``."""
    return f"_l{layer}" + ("_reverse" if direction else "")
