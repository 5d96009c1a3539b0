"""Pure stream-processing functions (no faust, no kafka): the embedded pipeline and the Faust workers
call these same functions."""
