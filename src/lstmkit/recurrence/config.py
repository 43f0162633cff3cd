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
    The cell variants (``docs/variants.md``): ``layer_norm`` (LSTM, GRU), ``peephole``
    (LSTM), ``recurrent_dropout`` (the rate of Gal & Ghahramani's per-sequence mask on
    h_{t-1}), ``zoneout`` (rate for h) and ``zoneout_cell`` (rate for C, LSTM).
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
    layer_norm: bool = False
    peephole: bool = False
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    zoneout_cell: float = 0.0

    @property
    def variant(self) -> bool:
        """True when the cell is not the plain LSTM/GRU of torch.nn (any variant option)."""
        return self.layer_norm or self.peephole or self.noisy

    @property
    def noisy(self) -> bool:
        """True when the recurrence draws masks (recurrent dropout, zoneout)."""
        return self.recurrent_dropout > 0 or self.zoneout > 0 or self.zoneout_cell > 0

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
    with G = 4 (i, f, g, o) for LSTM and 3 (r, z, n) for GRU. The variants' parameters
    (None when off): layer-norm gains ln_ih, ln_hh (G·H,), the cell's gain and shift
    ln_c, ln_c_bias (H,) (LSTM), peepholes w_ph (3H,) in the order i, f, o.
    """

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None
    w_hr: Tensor | None
    ln_ih: Tensor | None = None
    ln_hh: Tensor | None = None
    ln_c: Tensor | None = None
    ln_c_bias: Tensor | None = None
    w_ph: Tensor | None = None
