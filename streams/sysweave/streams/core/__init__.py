"""Pure stream-processing functions (no faust, no kafka): the embedded pipeline and the Faust workers
call these same functions. (Assembly itself lives in ``sysweave.schemas.assembly``: the validator needs it
too, and nothing may depend on streams but the CLI wiring.)"""
