-- luacheck configuration for the Wireshark plugin (tests/test_lua_hygiene.py runs it).
std = "lua52"
max_line_length = 120
-- The Wireshark Lua API the plugin may read; it must define no globals of its own.
read_globals = {
    "Proto", "ProtoField", "ProtoExpert", "Pref", "Field", "TreeItem", "expert",
    "register_postdissector", "set_plugin_info", "base",
    -- the Requests table: tshark -z and the GUI's Tools menu
    "Listener", "register_stat_cmd_arg", "gui_enabled", "register_menu", "MENU_TOOLS_UNSORTED",
    "TextWindow", "new_dialog", "set_filter", "apply_filter", "retap_packets",
}
