-- luacheck configuration for the Wireshark plugin (tests/test_lua_hygiene.py runs it).
std = "lua52"
max_line_length = 120
-- The Wireshark Lua API the plugin may read; it must define no globals of its own.
read_globals = {
    "Proto", "ProtoField", "ProtoExpert", "Pref", "Field", "TreeItem", "expert",
    "register_postdissector", "set_plugin_info", "base",
}
