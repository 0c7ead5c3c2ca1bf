"""APN ID templates: how a domain splits its opaque APN ID into APP-Group and USER-Group IDs.

The split is configuration, not wire format (DESIGN.md 2.2): e.g. a 32-bit ID as APP-Group
(high 16 bits) and USER-Group (low 16). Policies match APN IDs by value and mask; the
template turns "all users of app 7" into that value/mask pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from icpn.constants import ApnIdType

ID_BITS = {ApnIdType.ID32: 32, ApnIdType.ID64: 64, ApnIdType.ID128: 128}


@dataclass(frozen=True)
class ApnIdTemplate:
    """APN ID = APP-Group (the high ``app_bits``) ‖ USER-Group (the next ``user_bits``);
    any remaining low bits are reserved and sent as zero."""

    id_type: ApnIdType = ApnIdType.ID32
    app_bits: int = 16
    user_bits: int = 16

    def __post_init__(self) -> None:
        if self.app_bits < 0 or self.user_bits < 0:
            raise ValueError("group widths must be non-negative")
        if self.app_bits + self.user_bits > self.id_bits:
            raise ValueError(
                f"APP ({self.app_bits}) + USER ({self.user_bits}) bits exceed "
                f"the {self.id_bits}-bit APN ID"
            )

    @property
    def id_bits(self) -> int:
        return ID_BITS[self.id_type]

    @property
    def _user_shift(self) -> int:
        return self.id_bits - self.app_bits - self.user_bits

    def compose(self, app_group: int, user_group: int = 0) -> int:
        """The APN ID carrying these group IDs."""
        for name, value, bits in (
            ("APP-Group", app_group, self.app_bits),
            ("USER-Group", user_group, self.user_bits),
        ):
            if not 0 <= value < (1 << bits):
                raise ValueError(f"{name} ID {value} does not fit {bits} bits")
        return (app_group << (self.id_bits - self.app_bits)) | (user_group << self._user_shift)

    def split(self, apn_id: int) -> tuple[int, int]:
        """(APP-Group, USER-Group) of an APN ID."""
        if not 0 <= apn_id < (1 << self.id_bits):
            raise ValueError(f"APN ID {apn_id:#x} does not fit {self.id_bits} bits")
        app = apn_id >> (self.id_bits - self.app_bits) if self.app_bits else 0
        user = (apn_id >> self._user_shift) & ((1 << self.user_bits) - 1)
        return app, user

    def match(self, app_group: int | None = None, user_group: int | None = None) -> tuple[int, int]:
        """(value, mask) matching the given groups, any value where a group is None."""
        value = self.compose(app_group or 0, user_group or 0)
        mask = 0
        if app_group is not None:
            mask |= ((1 << self.app_bits) - 1) << (self.id_bits - self.app_bits)
        if user_group is not None:
            mask |= ((1 << self.user_bits) - 1) << self._user_shift
        return value, mask
