"""What a recurrent network is: its configuration and the weights of one direction."""

from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor

MERGE_MODES = ("concat", "sum", "mean", "mul")


@dataclass(frozen=True)
class RNNConfig:
    """The shape of a (stacked, possibly bidirectional) LSTM or GRU network.

    ``proj_size`` is LSTM only (0 = no projection); ``reset_after`` is GRU only.
    ``merge_mode`` says how the two directions' outputs are joined at every layer.
    """

    mode: str  # "LSTM" or "GRU"
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0
    merge_mode: str = "concat"
    reset_after: bool = True

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def gate_count(self) -> int:
        return 4 if self.mode == "LSTM" else 3

    @property
    def out_size(self) -> int:
        """Size of h_t of one direction: ``proj_size`` when projecting, else hidden size."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def output_size(self) -> int:
        """Feature size of the layer output after merging the directions."""
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.out_size
        return self.out_size

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_size


class DirectionWeights(NamedTuple):
    """The parameters of one layer and direction, in torch.nn's layout.

    w_ih (G·H, H_in), w_hh (G·H, P), b_ih and b_hh (G·H,) or None, w_hr (P, H) or None,
    with G = 4 (i, f, g, o) for LSTM and 3 (r, z, n) for GRU.
    """

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None
    w_hr: Tensor | None
