"""Parameter checks of the gateware blocks: the same functions, and wording, as essop.config's."""
from essop.checks import check_choice, check_int

__all__ = ["check_choice", "check_int"]
