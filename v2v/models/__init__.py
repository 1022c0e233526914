"""The vid2vid networks: generator (:mod:`.generator`), feature encoder (:mod:`.encoder`),
discriminators (:mod:`.discriminators`), condition maps (:mod:`.inputs`), presets and builders
(:mod:`.presets`), shared blocks (:mod:`.layers`)."""
