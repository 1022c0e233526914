"""The vid2vid networks: generator (:mod:`.generator`), feature encoder and feature bank (:mod:`.encoder`),
discriminators (:mod:`.discriminators`), presets and builders (:mod:`.presets`), shared blocks (:mod:`.layers`)."""
