"""Application core: the factory, settings, extensions and command-line groups."""
