"""essop.synth.fpga: board names."""
import pytest

from essop.app import cli


def test_unknown_board(capsys):
    from essop.synth.fpga import BOARDS, board
    with pytest.raises(ValueError) as e:
        board("de10_nano")
    assert str(e.value) == f"unknown board 'de10_nano'; known boards: {', '.join(BOARDS)}"
    assert cli.main(["fpga", "--board", "arty_a7"]) == 2
    assert "unknown board 'arty_a7'" in capsys.readouterr().err
