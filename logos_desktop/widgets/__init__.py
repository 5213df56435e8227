"""Qt widgets of the workspace: ``qt_<name>.py`` holds ``Qt<Name>``."""
