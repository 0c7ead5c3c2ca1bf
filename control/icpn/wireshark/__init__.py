"""The project's Wireshark/tshark Lua dissector, shipped with the package:
``tshark -X lua_script:$(python -c 'import icpn.wireshark as w; print(w.LUA_DISSECTOR)')``."""

from pathlib import Path

LUA_DISSECTOR = Path(__file__).with_name("icpn.lua")
