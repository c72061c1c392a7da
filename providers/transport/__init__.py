"""How sipctl reaches a host (local, SSH, a ``dir:`` root): the connection pool, the file
scripts and the host locks."""
